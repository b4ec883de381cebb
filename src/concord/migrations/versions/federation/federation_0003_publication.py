"""federation: where a job's final model was published in the commons

Revision ID: federation_0003
Revises: federation_0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "federation_0003"
down_revision: str | Sequence[str] | None = "federation_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = "commons_0001"


def upgrade() -> None:
    with op.batch_alter_table("fed_jobs") as batch:
        batch.add_column(sa.Column("model_repo", sa.String(300), nullable=False, server_default=""))
        batch.add_column(sa.Column("publication", sa.JSON(), nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("fed_jobs") as batch:
        batch.drop_column("publication")
        batch.drop_column("model_repo")
