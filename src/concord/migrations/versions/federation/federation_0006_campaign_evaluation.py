"""federation: evaluation campaigns, their models, results and nodes' answers

Revision ID: federation_0006_campaign
Revises: federation_0005_secagg
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from concord.db import UTCDateTime

revision: str = "federation_0006_campaign"
down_revision: str | Sequence[str] | None = "federation_0005_secagg"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "fed_campaigns",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("opened_by", sa.Integer(), sa.ForeignKey("members.id"), nullable=True),
        sa.Column("task", sa.String(100), nullable=False),
        sa.Column("metric", sa.String(100), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("evaluation_set", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("proposal_id", sa.Integer(), nullable=True),
        sa.Column("job_id", sa.Integer(), sa.ForeignKey("fed_jobs.id"), nullable=True),
        sa.Column("members", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
    )
    op.create_table(
        "fed_campaign_models",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("campaign_id", sa.Integer(), sa.ForeignKey("fed_campaigns.id"), nullable=False),
        sa.Column("repo", sa.String(300), nullable=False),
        sa.Column("revision", sa.String(64), nullable=False),
        sa.UniqueConstraint("campaign_id", "repo", "revision"),
    )
    op.create_index("ix_fed_campaign_models_campaign_id", "fed_campaign_models", ["campaign_id"])
    op.create_index("ix_fed_campaign_models_repo", "fed_campaign_models", ["repo"])
    op.create_table(
        "fed_campaign_results",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("campaign_id", sa.Integer(), sa.ForeignKey("fed_campaigns.id"), nullable=False),
        sa.Column(
            "model_id", sa.Integer(), sa.ForeignKey("fed_campaign_models.id"), nullable=False
        ),
        sa.Column("member_id", sa.Integer(), sa.ForeignKey("members.id"), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("num_examples", sa.Integer(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("model_id", "member_id"),
    )
    op.create_index("ix_fed_campaign_results_campaign_id", "fed_campaign_results", ["campaign_id"])
    op.create_table(
        "fed_campaign_answers",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("campaign_id", sa.Integer(), sa.ForeignKey("fed_campaigns.id"), nullable=False),
        sa.Column("member_id", sa.Integer(), sa.ForeignKey("members.id"), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reason", sa.String(300), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("campaign_id", "member_id"),
    )
    op.create_index("ix_fed_campaign_answers_campaign_id", "fed_campaign_answers", ["campaign_id"])


def downgrade() -> None:
    op.drop_index("ix_fed_campaign_answers_campaign_id", table_name="fed_campaign_answers")
    op.drop_table("fed_campaign_answers")
    op.drop_index("ix_fed_campaign_results_campaign_id", table_name="fed_campaign_results")
    op.drop_table("fed_campaign_results")
    op.drop_index("ix_fed_campaign_models_repo", table_name="fed_campaign_models")
    op.drop_index("ix_fed_campaign_models_campaign_id", table_name="fed_campaign_models")
    op.drop_table("fed_campaign_models")
    op.drop_table("fed_campaigns")
