"""commons: which repositories hold each blob (content by hash is served to their readers),
private repositories, and likes

Revision ID: commons_0003_hubgate
Revises: commons_0002_hubwrite
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from concord.db import UTCDateTime

revision: str = "commons_0003_hubgate"
down_revision: str | Sequence[str] | None = "commons_0002_hubwrite"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _gated(card: object) -> bool:
    # `repositories.gate`, frozen here: a migration must not change with the code.
    value = card.get("gated") if isinstance(card, dict) else None
    return value is True or str(value).lower() in ("auto", "manual")


def upgrade() -> None:
    op.add_column(
        "commons_repositories",
        sa.Column("private", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "commons_likes",
        sa.Column(
            "repository_id",
            sa.Integer(),
            sa.ForeignKey("commons_repositories.id"),
            primary_key=True,
        ),
        sa.Column(
            "person_id", sa.Integer(), sa.ForeignKey("people.id"), primary_key=True, index=True
        ),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    holdings = op.create_table(
        "commons_holdings",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column(
            "repository_id",
            sa.Integer(),
            sa.ForeignKey("commons_repositories.id"),
            primary_key=True,
            index=True,
        ),
        sa.Column("open", sa.Boolean(), nullable=False),
    )
    # Every existing revision's blobs, held by its repository; open if one revision holding
    # a blob is not gated.
    revisions = sa.table(
        "commons_revisions",
        sa.column("repository_id", sa.Integer()),
        sa.column("files", sa.JSON()),
        sa.column("card", sa.JSON()),
    )
    held: dict[tuple[str, int], bool] = {}
    connection = op.get_bind()
    for repository_id, files, card in connection.execute(
        sa.select(revisions.c.repository_id, revisions.c.files, revisions.c.card)
    ):
        opened = not _gated(card)
        for sha in set((files or {}).values()):
            key = (str(sha), int(repository_id))
            held[key] = held.get(key, False) or opened
    if held:
        op.bulk_insert(
            holdings,
            [{"sha256": s, "repository_id": r, "open": o} for (s, r), o in sorted(held.items())],
        )


def downgrade() -> None:
    op.drop_table("commons_holdings")
    op.drop_table("commons_likes")
    op.drop_column("commons_repositories", "private")
