"""governance: proposals, amendments, statements, votes, ballots, decisions, charter

Revision ID: governance_0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from concord.db import UTCDateTime

revision: str = "governance_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("governance",)
depends_on: str | Sequence[str] | None = "members_0001"


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.Integer(), primary_key=True)


def _fk(name: str, target: str, nullable: bool = False, index: bool = False) -> sa.Column[int]:
    return sa.Column(name, sa.Integer(), sa.ForeignKey(target), nullable=nullable, index=index)


def upgrade() -> None:
    op.create_table(
        "governance_proposals",
        _id(),
        sa.Column("reference", sa.String(32), nullable=False, unique=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("texts", sa.JSON(), nullable=False),
        _fk("sponsor_id", "members.id", index=True),
        sa.Column("cosponsor_ids", sa.JSON(), nullable=False),
        _fk("author_person_id", "people.id"),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("public_consultation", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("deliberation_at", UTCDateTime(), nullable=True),
        sa.Column("ballot_at", UTCDateTime(), nullable=True),
        sa.Column("closes_at", UTCDateTime(), nullable=True),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("votes_version", sa.Integer(), nullable=False),
        sa.Column("map_version", sa.Integer(), nullable=False),
        sa.Column("opinion_map", sa.JSON(), nullable=True),
    )
    op.create_table(
        "governance_amendments",
        _id(),
        _fk("proposal_id", "governance_proposals.id", index=True),
        _fk("member_id", "members.id"),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("arithmetic", sa.JSON(), nullable=True),
    )
    op.create_table(
        "governance_statements",
        _id(),
        _fk("proposal_id", "governance_proposals.id", index=True),
        _fk("person_id", "people.id", index=True),
        _fk("member_id", "members.id", nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "governance_statement_votes",
        _id(),
        _fk("proposal_id", "governance_proposals.id", index=True),
        _fk("statement_id", "governance_statements.id"),
        _fk("person_id", "people.id", index=True),
        _fk("member_id", "members.id", nullable=True),
        sa.Column("vote", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("statement_id", "person_id"),
    )
    op.create_table(
        "governance_ballots",
        _id(),
        _fk("proposal_id", "governance_proposals.id", index=True),
        _fk("member_id", "members.id"),
        sa.Column("choice", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("nonce", sa.String(64), nullable=False, unique=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
        sa.Column("cast_at", UTCDateTime(), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.UniqueConstraint("proposal_id", "member_id"),
    )
    op.create_table(
        "governance_amendment_ballots",
        _id(),
        _fk("amendment_id", "governance_amendments.id", index=True),
        _fk("member_id", "members.id"),
        sa.Column("choice", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("nonce", sa.String(64), nullable=False, unique=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
        sa.Column("cast_at", UTCDateTime(), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.UniqueConstraint("amendment_id", "member_id"),
    )
    op.create_table(
        "governance_decisions",
        _id(),
        _fk("proposal_id", "governance_proposals.id"),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("arithmetic", sa.JSON(), nullable=False),
        sa.Column("decided_at", UTCDateTime(), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.UniqueConstraint("proposal_id"),
    )
    op.create_table(
        "governance_charter_versions",
        _id(),
        sa.Column("version", sa.Integer(), nullable=False, unique=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        _fk("person_id", "people.id", nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    for name in (
        "governance_charter_versions",
        "governance_decisions",
        "governance_amendment_ballots",
        "governance_ballots",
        "governance_statement_votes",
        "governance_statements",
        "governance_amendments",
        "governance_proposals",
    ):
        op.drop_table(name)
