"""federation: per member and round, what the robust rule did to its update

Revision ID: federation_0004_robust
Revises: federation_0003
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "federation_0004_robust"
down_revision: str | Sequence[str] | None = "federation_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("fed_rounds") as batch:
        batch.add_column(sa.Column("robustness", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("fed_rounds") as batch:
        batch.drop_column("robustness")
