"""members: members, blocs, people, tokens, sessions, keys

Revision ID: members_0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from concord.db import UTCDateTime

revision: str = "members_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("members",)
depends_on: str | Sequence[str] | None = "ledger_0001"


def upgrade() -> None:
    op.create_table(
        "members",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("slug", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("country_code", sa.String(2), nullable=False, index=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("admitted_at", UTCDateTime(), nullable=False),
        sa.Column("suspended_at", UTCDateTime(), nullable=True),
        sa.Column("withdrawn_at", UTCDateTime(), nullable=True),
    )
    op.create_table(
        "member_status_changes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "member_id", sa.Integer(), sa.ForeignKey("members.id"), nullable=False, index=True
        ),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=True),
    )
    op.create_table(
        "custom_blocs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
    )
    op.create_table(
        "custom_bloc_members",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "bloc_id",
            sa.Integer(),
            sa.ForeignKey("custom_blocs.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("member_id", sa.Integer(), sa.ForeignKey("members.id"), nullable=False),
        sa.UniqueConstraint("bloc_id", "member_id"),
    )
    op.create_table(
        "people",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(254), nullable=False, unique=True),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("member_id", sa.Integer(), sa.ForeignKey("members.id"), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "person_id", sa.Integer(), sa.ForeignKey("people.id"), nullable=False, index=True
        ),
        sa.Column("label", sa.String(100), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False, unique=True),
        sa.Column("digest", sa.LargeBinary(32), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.Column("last_used_at", UTCDateTime(), nullable=True),
    )
    op.create_table(
        "browser_sessions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("digest", sa.LargeBinary(32), nullable=False, unique=True),
        sa.Column(
            "person_id", sa.Integer(), sa.ForeignKey("people.id"), nullable=False, index=True
        ),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "member_keys",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "member_id", sa.Integer(), sa.ForeignKey("members.id"), nullable=False, index=True
        ),
        sa.Column("public_key", sa.LargeBinary(32), nullable=False, unique=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("retired_at", UTCDateTime(), nullable=True),
    )


def downgrade() -> None:
    for table in (
        "member_keys",
        "browser_sessions",
        "api_tokens",
        "people",
        "custom_bloc_members",
        "custom_blocs",
        "member_status_changes",
        "members",
    ):
        op.drop_table(table)
