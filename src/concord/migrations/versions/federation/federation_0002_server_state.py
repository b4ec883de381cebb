"""federation: server optimiser checkpoints, the key that registered a node

Revision ID: federation_0002
Revises: federation_0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "federation_0002"
down_revision: str | Sequence[str] | None = "federation_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("fed_jobs") as batch:
        batch.add_column(
            sa.Column("server_state", sa.String(300), nullable=False, server_default="")
        )
    with op.batch_alter_table("fed_nodes") as batch:
        batch.add_column(
            sa.Column("key_fingerprint", sa.String(64), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("fed_nodes") as batch:
        batch.drop_column("key_fingerprint")
    with op.batch_alter_table("fed_jobs") as batch:
        batch.drop_column("server_state")
