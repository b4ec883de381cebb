"""capacity: priority rankings adopted by governance, which order the programme list

Revision ID: capacity_0002_rank
Revises: capacity_0001
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from concord.db import UTCDateTime

revision: str = "capacity_0002_rank"
down_revision: str | Sequence[str] | None = "capacity_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "priority_rankings",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("decision_id", sa.Integer(), nullable=False, unique=True),
        sa.Column("proposal_id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(40), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("method", sa.String(20), nullable=False),
        sa.Column("ranked", sa.JSON(), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("priority_rankings")
