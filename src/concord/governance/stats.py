"""Read-only figures about governance for the impact dashboard."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from concord.governance.tables import Ballot, Proposal, Statement, StatementVote


def participation(
    session: Session, since: datetime | None = None, until: datetime | None = None
) -> dict[int, dict[str, int]]:
    """member_id → {"statements", "statement_votes", "ballots", "proposals"} in [since, until).

    Delegates' acts count for their member; observers have no member and are not counted.
    Ballots count once per member and proposal (the last one cast)."""
    out: dict[int, dict[str, int]] = defaultdict(
        lambda: {"statements": 0, "statement_votes": 0, "ballots": 0, "proposals": 0}
    )

    def window(query: Any, column: Any) -> Any:
        if since is not None:
            query = query.where(column >= since)
        if until is not None:
            query = query.where(column < until)
        return query

    sources = (
        ("statements", Statement.member_id, Statement.created_at),
        ("statement_votes", StatementVote.member_id, StatementVote.created_at),
        ("ballots", Ballot.member_id, Ballot.cast_at),
        ("proposals", Proposal.sponsor_id, Proposal.created_at),
    )
    for name, member, at in sources:
        query = window(select(member, func.count()).where(member.is_not(None)).group_by(member), at)
        for member_id, count in session.execute(query).all():
            out[int(member_id)][name] = int(count)
    return dict(out)
