"""members: a browser session names the token it was opened with

Sessions opened before this revision name no token, so revoking their token could not end
them: they are deleted (their browsers sign in again).

Revision ID: members_0002_access
Revises: members_0001
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "members_0002_access"
down_revision: str | Sequence[str] | None = "members_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(sa.text("DELETE FROM browser_sessions"))
    with op.batch_alter_table("browser_sessions", recreate="always") as batch:
        batch.add_column(sa.Column("token_id", sa.Integer(), nullable=False))
        batch.create_foreign_key("fk_browser_sessions_token_id", "api_tokens", ["token_id"], ["id"])
        batch.create_index("ix_browser_sessions_token_id", ["token_id"])


def downgrade() -> None:
    with op.batch_alter_table("browser_sessions", recreate="always") as batch:
        batch.drop_index("ix_browser_sessions_token_id")
        batch.drop_constraint("fk_browser_sessions_token_id", type_="foreignkey")
        batch.drop_column("token_id")
