"""core: events keep their attempts, when to try again, and when they failed for good

Revision ID: core_0002_locks
Revises: core_0001
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from concord.db import UTCDateTime

revision: str = "core_0002_locks"
down_revision: str | Sequence[str] | None = "core_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("next_attempt_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("failed_at", UTCDateTime(), nullable=True))
    # Before this revision a failing handler marked its event delivered with an error; those
    # events never ran their handler to the end: make them failed, for the secretariat to see.
    op.execute(
        "UPDATE events SET failed_at = delivered_at, delivered_at = NULL, attempts = 1 "
        "WHERE error IS NOT NULL AND delivered_at IS NOT NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.drop_column("failed_at")
        batch.drop_column("next_attempt_at")
        batch.drop_column("attempts")
