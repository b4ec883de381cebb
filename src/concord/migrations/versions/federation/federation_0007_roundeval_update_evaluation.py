"""federation: a member's evaluation of the model it received, beside its round update

Revision ID: federation_0007_roundeval
Revises: federation_0006_campaign
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "federation_0007_roundeval"
down_revision: str | Sequence[str] | None = "federation_0006_campaign"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("fed_updates") as batch:
        batch.add_column(sa.Column("evaluation", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("fed_updates") as batch:
        batch.drop_column("evaluation")
