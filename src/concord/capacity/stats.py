"""Read-only figures for the impact dashboard."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from concord.capacity.tables import Completion, Enrolment, ExchangeItem, Match


def seats_filled(
    session: Session, since: datetime | None = None, until: datetime | None = None
) -> dict[int, int]:
    """member_id → seats its people took (enrolled, attended or completed)."""
    query = select(Enrolment.member_id).where(
        Enrolment.status.in_(("enrolled", "attended", "completed"))
    )
    if since:
        query = query.where(Enrolment.created_at >= since)
    if until:
        query = query.where(Enrolment.created_at < until)
    return dict(Counter(session.scalars(query).all()))


def completions(
    session: Session, since: datetime | None = None, until: datetime | None = None
) -> dict[int, int]:
    query = select(Enrolment.member_id).join(Completion, Completion.enrolment_id == Enrolment.id)
    if since:
        query = query.where(Completion.issued_at >= since)
    if until:
        query = query.where(Completion.issued_at < until)
    return dict(Counter(session.scalars(query).all()))


def needs_met(
    session: Session, since: datetime | None = None, until: datetime | None = None
) -> dict[int, int]:
    """member_id → its needs met by accepted matches."""
    query = (
        select(ExchangeItem.member_id)
        .join(Match, Match.need_id == ExchangeItem.id)
        .where(Match.status == "accepted")
    )
    if since:
        query = query.where(Match.decided_at >= since)
    if until:
        query = query.where(Match.decided_at < until)
    return dict(Counter(session.scalars(query).all()))
