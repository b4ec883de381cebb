"""capacity: programmes, sessions, enrolments, completions, commitments, exchange, matches

Revision ID: capacity_0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from concord.db import UTCDateTime

revision: str = "capacity_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("capacity",)
depends_on: str | Sequence[str] | None = "members_0001"


def upgrade() -> None:
    op.create_table(
        "programmes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("area", sa.String(40), nullable=False, index=True),
        sa.Column(
            "host_member_id", sa.Integer(), sa.ForeignKey("members.id"), nullable=False, index=True
        ),
        sa.Column("languages", sa.JSON(), nullable=False),
        sa.Column("mode", sa.String(20), nullable=False),
        sa.Column("place", sa.String(200), nullable=False),
        sa.Column("seats", sa.Integer(), nullable=False),
        sa.Column("eligibility", sa.String(64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "programme_sessions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "programme_id", sa.Integer(), sa.ForeignKey("programmes.id"), nullable=False, index=True
        ),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("starts_at", UTCDateTime(), nullable=False),
        sa.Column("ends_at", UTCDateTime(), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
    )
    op.create_table(
        "enrolments",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "programme_id", sa.Integer(), sa.ForeignKey("programmes.id"), nullable=False, index=True
        ),
        sa.Column(
            "member_id", sa.Integer(), sa.ForeignKey("members.id"), nullable=False, index=True
        ),
        sa.Column("participant", sa.String(200), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, index=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("attended", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "completions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "enrolment_id",
            sa.Integer(),
            sa.ForeignKey("enrolments.id"),
            nullable=False,
            unique=True,
        ),
        sa.Column("record", sa.LargeBinary(), nullable=False),
        sa.Column("signature", sa.String(120), nullable=False),
        sa.Column("issued_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "commitments",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("member_id", sa.Integer(), sa.ForeignKey("members.id"), nullable=True),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("metric", sa.String(40), nullable=False),
        sa.Column("target", sa.Float(), nullable=False),
        sa.Column("start", sa.Date(), nullable=False),
        sa.Column("due", sa.Date(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "exchange_items",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("side", sa.String(10), nullable=False, index=True),
        sa.Column("kind", sa.String(20), nullable=False, index=True),
        sa.Column(
            "member_id", sa.Integer(), sa.ForeignKey("members.id"), nullable=False, index=True
        ),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.Column("languages", sa.JSON(), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, index=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "matches",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "need_id", sa.Integer(), sa.ForeignKey("exchange_items.id"), nullable=False, index=True
        ),
        sa.Column(
            "offer_id", sa.Integer(), sa.ForeignKey("exchange_items.id"), nullable=False, index=True
        ),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.Column("benefit", sa.Float(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, index=True),
        sa.Column("need_answer", sa.String(10), nullable=False),
        sa.Column("offer_answer", sa.String(10), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
    )


def downgrade() -> None:
    for table in (
        "matches",
        "exchange_items",
        "commitments",
        "completions",
        "enrolments",
        "programme_sessions",
        "programmes",
    ):
        op.drop_table(table)
