"""governance: statements carry their language and moderation; translations of members' words

Revision ID: governance_0004_words
Revises: governance_0003_decide
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from concord.db import UTCDateTime

revision: str = "governance_0004_words"
down_revision: str | Sequence[str] | None = "governance_0003_decide"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("governance_statements") as batch:
        # statements written before languages were recorded were English by the old forms
        batch.add_column(sa.Column("language", sa.String(8), nullable=False, server_default="en"))
        batch.add_column(sa.Column("hidden_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("hidden_reason", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("hidden_by", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_governance_statements_hidden_by", "people", ["hidden_by"], ["id"]
        )
    op.create_table(
        "governance_translations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "proposal_id", sa.Integer(), sa.ForeignKey("governance_proposals.id"), nullable=False
        ),
        sa.Column(
            "statement_id", sa.Integer(), sa.ForeignKey("governance_statements.id"), nullable=True
        ),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("origin", sa.String(20), nullable=False),
        sa.Column("person_id", sa.Integer(), sa.ForeignKey("people.id"), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
    )
    op.create_index(
        "ix_governance_translations_proposal_id", "governance_translations", ["proposal_id"]
    )
    op.create_index(
        "ix_governance_translations_statement_id", "governance_translations", ["statement_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_governance_translations_statement_id", "governance_translations")
    op.drop_index("ix_governance_translations_proposal_id", "governance_translations")
    op.drop_table("governance_translations")
    with op.batch_alter_table("governance_statements") as batch:
        batch.drop_constraint("fk_governance_statements_hidden_by", type_="foreignkey")
        batch.drop_column("hidden_by")
        batch.drop_column("hidden_reason")
        batch.drop_column("hidden_at")
        batch.drop_column("language")
