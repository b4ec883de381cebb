"""federation: what each round's differential privacy applied and cost, and why a job ended

Revision ID: federation_0004_dp
Revises: federation_0004_robust (both were written as the fourth; robust landed first)
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "federation_0004_dp"
down_revision: str | Sequence[str] | None = "federation_0004_robust"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("fed_rounds") as batch:
        batch.add_column(sa.Column("privacy", sa.JSON(), nullable=True))
    with op.batch_alter_table("fed_jobs") as batch:
        batch.add_column(
            sa.Column("finish_reason", sa.String(300), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("fed_jobs") as batch:
        batch.drop_column("finish_reason")
    with op.batch_alter_table("fed_rounds") as batch:
        batch.drop_column("privacy")
