"""governance: decision methods on proposals, original texts for amendments, proxies

Revision ID: governance_0003_decide
Revises: governance_0002_ballots
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from concord.db import UTCDateTime

revision: str = "governance_0003_decide"
down_revision: str | Sequence[str] | None = "governance_0002_ballots"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("governance_proposals") as batch:
        batch.add_column(sa.Column("method", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("original_texts", sa.JSON(), nullable=True))
    op.create_table(
        "governance_proxies",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("member_id", sa.Integer(), sa.ForeignKey("members.id"), nullable=False),
        sa.Column("holder_id", sa.Integer(), sa.ForeignKey("members.id"), nullable=False),
        sa.Column("proposal", sa.String(32), nullable=True),
        sa.Column("starts_at", UTCDateTime(), nullable=True),
        sa.Column("ends_at", UTCDateTime(), nullable=True),
        sa.Column("nonce", sa.String(64), nullable=False, unique=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_governance_proxies_member_id", "governance_proxies", ["member_id"])
    op.create_index("ix_governance_proxies_holder_id", "governance_proxies", ["holder_id"])


def downgrade() -> None:
    op.drop_index("ix_governance_proxies_holder_id", "governance_proxies")
    op.drop_index("ix_governance_proxies_member_id", "governance_proxies")
    op.drop_table("governance_proxies")
    with op.batch_alter_table("governance_proposals") as batch:
        batch.drop_column("original_texts")
        batch.drop_column("method")
