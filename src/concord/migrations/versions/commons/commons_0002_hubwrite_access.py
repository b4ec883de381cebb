"""commons: access requests to gated repositories

Revision ID: commons_0002_hubwrite
Revises: commons_0001
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from concord.db import UTCDateTime

revision: str = "commons_0002_hubwrite"
down_revision: str | Sequence[str] | None = "commons_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "commons_access_requests",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "repository_id",
            sa.Integer(),
            sa.ForeignKey("commons_repositories.id"),
            nullable=False,
            index=True,
        ),
        sa.Column("person_id", sa.Integer(), sa.ForeignKey("people.id"), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.UniqueConstraint("repository_id", "person_id"),
    )


def downgrade() -> None:
    op.drop_table("commons_access_requests")
