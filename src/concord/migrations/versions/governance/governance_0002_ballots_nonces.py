"""governance: every nonce a member used (no replay of an earlier ballot); amendment ballot opening

Revision ID: governance_0002_ballots
Revises: governance_0001
Create Date: 2026-12-01
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from concord.db import UTCDateTime

revision: str = "governance_0002_ballots"
down_revision: str | Sequence[str] | None = "governance_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = "ledger_0001"


def upgrade() -> None:
    nonces = op.create_table(
        "governance_ballot_nonces",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("member_id", sa.Integer(), sa.ForeignKey("members.id"), nullable=False),
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.UniqueConstraint("member_id", "nonce"),
    )
    with op.batch_alter_table("governance_amendments") as batch:
        batch.add_column(sa.Column("ballot_at", UTCDateTime(), nullable=True))
    # The nonces used so far are those of the ballots in the log (earlier ones included).
    rows = op.get_bind().execute(
        sa.text(
            "SELECT idx, member_id, body FROM ledger_entries "
            "WHERE kind = 'governance.ballot' ORDER BY idx"
        )
    )
    seen: set[tuple[int, str]] = set()
    used = []
    for index, member_id, body in rows:
        raw = body if isinstance(body, bytes | str) else bytes(body)
        nonce = str(json.loads(raw)["content"]["payload"].get("nonce", ""))[:64]
        if member_id is not None and nonce and (member_id, nonce) not in seen:
            seen.add((member_id, nonce))
            used.append({"member_id": member_id, "nonce": nonce, "log_index": index})
    if used:
        op.bulk_insert(nonces, used)


def downgrade() -> None:
    with op.batch_alter_table("governance_amendments") as batch:
        batch.drop_column("ballot_at")
    op.drop_table("governance_ballot_nonces")
