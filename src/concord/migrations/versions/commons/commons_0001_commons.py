"""commons: chunks, blobs, repositories, revisions, refs, downloads

Revision ID: commons_0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from concord.db import UTCDateTime

revision: str = "commons_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("commons",)
depends_on: str | Sequence[str] | None = "members_0001"


def upgrade() -> None:
    op.create_table(
        "commons_chunks",
        sa.Column("hash", sa.String(64), primary_key=True),
        sa.Column("pack", sa.String(64), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("length", sa.Integer(), nullable=False),
    )
    op.create_table(
        "commons_blobs",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("chunks", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "commons_repositories",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("name", sa.String(96), nullable=False),
        sa.Column(
            "member_id", sa.Integer(), sa.ForeignKey("members.id"), nullable=False, index=True
        ),
        sa.Column("licence", sa.String(64), nullable=False),
        sa.Column("mirrored_from", sa.String(300), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("kind", "owner", "name"),
    )
    op.create_table(
        "commons_revisions",
        sa.Column("sha", sa.String(40), primary_key=True),
        sa.Column(
            "repository_id",
            sa.Integer(),
            sa.ForeignKey("commons_repositories.id"),
            nullable=False,
            index=True,
        ),
        sa.Column("parent", sa.String(40), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("card", sa.JSON(), nullable=False),
        sa.Column("provenance", sa.JSON(), nullable=False),
        sa.Column("conformance", sa.JSON(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("log_index", sa.BigInteger(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "commons_refs",
        sa.Column(
            "repository_id",
            sa.Integer(),
            sa.ForeignKey("commons_repositories.id"),
            primary_key=True,
        ),
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("sha", sa.String(40), nullable=False),
    )
    op.create_table(
        "commons_downloads",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "repository_id",
            sa.Integer(),
            sa.ForeignKey("commons_repositories.id"),
            nullable=False,
            index=True,
        ),
        sa.Column("path", sa.String(500), nullable=False),
        sa.Column("country", sa.String(2), nullable=True, index=True),
        sa.Column("at", UTCDateTime(), nullable=False, index=True),
    )


def downgrade() -> None:
    for table in (
        "commons_downloads",
        "commons_refs",
        "commons_revisions",
        "commons_repositories",
        "commons_blobs",
        "commons_chunks",
    ):
        op.drop_table(table)
