"""federation: jobs, nodes, rounds, updates

Revision ID: federation_0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from concord.db import UTCDateTime

revision: str = "federation_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("federation",)
depends_on: str | Sequence[str] | None = "members_0001"


def upgrade() -> None:
    op.create_table(
        "fed_jobs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("reference", sa.String(40), nullable=False),
        sa.Column("proposal_id", sa.Integer(), nullable=True),
        sa.Column("decision_id", sa.Integer(), nullable=True),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("rounds_done", sa.Integer(), nullable=False),
        sa.Column("parameters", sa.String(300), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("conformance", sa.JSON(), nullable=False),
        sa.Column("model_path", sa.String(300), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
    )
    op.create_table(
        "fed_nodes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "member_id", sa.Integer(), sa.ForeignKey("members.id"), nullable=False, unique=True
        ),
        sa.Column("tasks", sa.JSON(), nullable=False),
        sa.Column("registered_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "fed_rounds",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("job_id", sa.Integer(), sa.ForeignKey("fed_jobs.id"), nullable=False, index=True),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("participants", sa.JSON(), nullable=False),
        sa.Column("parameters", sa.String(300), nullable=False),
        sa.Column("deadline", UTCDateTime(), nullable=False),
        sa.Column("opened_at", UTCDateTime(), nullable=False),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("examples", sa.Integer(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=True),
        sa.UniqueConstraint("job_id", "number", "attempt"),
    )
    op.create_table(
        "fed_updates",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "round_id", sa.Integer(), sa.ForeignKey("fed_rounds.id"), nullable=False, index=True
        ),
        sa.Column(
            "member_id", sa.Integer(), sa.ForeignKey("members.id"), nullable=False, index=True
        ),
        sa.Column("path", sa.String(300), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("examples", sa.Integer(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("energy_kwh", sa.Float(), nullable=False),
        sa.Column("emissions_kg", sa.Float(), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("round_id", "member_id"),
    )


def downgrade() -> None:
    for table in ("fed_updates", "fed_rounds", "fed_nodes", "fed_jobs"):
        op.drop_table(table)
