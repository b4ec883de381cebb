"""commons: a secret salt per repository, for the log's commitments to private ones

Revision ID: commons_0004_privatelog
Revises: commons_0003_hubgate
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "commons_0004_privatelog"
down_revision: str | Sequence[str] | None = "commons_0003_hubgate"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable: made when first needed (an entry about a private repository).
    op.add_column("commons_repositories", sa.Column("log_salt", sa.String(64), nullable=True))


def downgrade() -> None:
    op.drop_column("commons_repositories", "log_salt")
