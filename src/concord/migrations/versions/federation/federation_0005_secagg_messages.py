"""federation: the SecAgg+ messages of a round (public keys, encrypted shares, reveals)

Revision ID: federation_0005_secagg
Revises: federation_0004_dp
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from concord.db import UTCDateTime

revision: str = "federation_0005_secagg"
down_revision: str | Sequence[str] | None = "federation_0004_dp"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "fed_secagg",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("round_id", sa.Integer(), sa.ForeignKey("fed_rounds.id"), nullable=False),
        sa.Column("member_id", sa.Integer(), sa.ForeignKey("members.id"), nullable=False),
        sa.Column("stage", sa.String(20), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("round_id", "member_id", "stage"),
    )
    op.create_index("ix_fed_secagg_round_id", "fed_secagg", ["round_id"])


def downgrade() -> None:
    op.drop_index("ix_fed_secagg_round_id", table_name="fed_secagg")
    op.drop_table("fed_secagg")
