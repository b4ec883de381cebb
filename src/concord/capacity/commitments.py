"""Commitments: something countable promised by a date, with progress computed from records."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from concord.capacity.tables import (
    Commitment,
    Completion,
    Enrolment,
    ExchangeItem,
    Match,
    Programme,
    ProgrammeSession,
)
from concord.db import utcnow
from concord.errors import N_, Invalid
from concord.ledger.log import append
from concord.members.countries import country
from concord.members.tables import Member

DEVELOPING_BLOCS = ("global-south", "ldc", "lldc", "sids", "income:low", "income:lower-middle")


class BadCommitment(Invalid):
    code = "commitment.invalid"
    message = N_("The commitment is not valid: {reason}")


def _window(c: Commitment) -> tuple[datetime, datetime]:
    return (datetime.combine(c.start, time.min, UTC), datetime.combine(c.due, time.max, UTC))


def _programmes_for_developing(session: Session, c: Commitment) -> float:
    """Programmes whose first session falls in the window and that give priority to, or are
    reserved for, developing countries."""
    start, end = _window(c)
    first = (
        select(ProgrammeSession.programme_id, func.min(ProgrammeSession.starts_at).label("first"))
        .group_by(ProgrammeSession.programme_id)
        .subquery()
    )
    rows = session.execute(
        select(Programme.eligibility, Programme.host_member_id)
        .join(first, first.c.programme_id == Programme.id)
        .where(first.c.first >= start, first.c.first <= end)
    ).all()
    if c.member_id is not None:
        rows = [r for r in rows if r.host_member_id == c.member_id]
    return float(sum(1 for r in rows if r.eligibility.partition(":")[2] in DEVELOPING_BLOCS))


def _gpu_hours_to_global_south(session: Session, c: Commitment) -> float:
    start, end = _window(c)
    rows = session.execute(
        select(Match.quantity, ExchangeItem.member_id, Match.offer_id)
        .join(ExchangeItem, ExchangeItem.id == Match.need_id)
        .where(
            Match.status == "accepted",
            ExchangeItem.kind == "compute",
            Match.decided_at >= start,
            Match.decided_at <= end,
        )
    ).all()
    members = {m.id: m for m in session.scalars(select(Member)).all()}
    total = 0.0
    for quantity, needing, offer_id in rows:
        if not country(members[needing].country_code).global_south:
            continue
        if c.member_id is not None:
            offer = session.get(ExchangeItem, offer_id)
            if offer is None or offer.member_id != c.member_id:
                continue
        total += quantity
    return total


def _seats_for_ldc(session: Session, c: Commitment) -> float:
    start, end = _window(c)
    rows = session.execute(
        select(Enrolment.member_id, Programme.host_member_id)
        .join(Programme, Programme.id == Enrolment.programme_id)
        .where(
            Enrolment.status.in_(("enrolled", "attended", "completed")),
            Enrolment.created_at >= start,
            Enrolment.created_at <= end,
        )
    ).all()
    members = {m.id: m for m in session.scalars(select(Member)).all()}
    return float(
        sum(
            1
            for member_id, host in rows
            if country(members[member_id].country_code).ldc
            and (c.member_id is None or host == c.member_id)
        )
    )


def _completions(session: Session, c: Commitment) -> float:
    start, end = _window(c)
    query = (
        select(func.count())
        .select_from(Completion)
        .where(Completion.issued_at >= start, Completion.issued_at <= end)
    )
    if c.member_id is not None:
        query = (
            query.join(Enrolment, Enrolment.id == Completion.enrolment_id)
            .join(Programme, Programme.id == Enrolment.programme_id)
            .where(Programme.host_member_id == c.member_id)
        )
    return float(session.scalar(query) or 0)


METRICS: dict[str, tuple[str, Callable[[Session, Commitment], float]]] = {
    "programmes-for-developing": (
        N_("programmes for developing countries"),
        _programmes_for_developing,
    ),
    "gpu-hours-to-global-south": (
        N_("GPU-hours given to Global South members"),
        _gpu_hours_to_global_south,
    ),
    "seats-for-ldc": (N_("training seats filled by least developed countries"), _seats_for_ldc),
    "completions": (N_("signed completions"), _completions),
}


@dataclass(frozen=True, slots=True)
class Progress:
    commitment: Commitment
    label: str
    value: float
    share: float
    elapsed: float
    status: str


def make(
    session: Session,
    *,
    member: Member | None,
    title: str,
    metric: str,
    target: float,
    start: date,
    due: date,
) -> Commitment:
    """Records a commitment by a member (or, with no member, by the organisation). Logged."""
    if metric not in METRICS:
        raise BadCommitment(reason=N_("unknown metric"))
    if not target > 0:
        raise BadCommitment(reason=N_("the target must be a positive number"))
    if due < start:
        raise BadCommitment(reason=N_("the due date is before the start date"))
    if not title.strip() or len(title) > 300:
        raise BadCommitment(reason=N_("the title must have 1 to 300 characters"))
    commitment = Commitment(
        member_id=member.id if member else None,
        title=title.strip(),
        metric=metric,
        target=target,
        start=start,
        due=due,
        created_at=utcnow(),
    )
    session.add(commitment)
    session.flush()
    append(
        session,
        "commitment.made",
        {
            "commitment": commitment.id,
            "title": commitment.title,
            "metric": metric,
            "target": target,
            "due": due.isoformat(),
        },
        member_id=member.id if member else None,
    )
    return commitment


def progress(session: Session, c: Commitment, today: date | None = None) -> Progress:
    """Progress from the records, against the time elapsed."""
    label, measure = METRICS[c.metric]
    value = measure(session, c)
    today = today or utcnow().date()
    span = max(1, (c.due - c.start).days)
    elapsed = min(1.0, max(0.0, (today - c.start).days / span))
    share = value / c.target
    if share >= 1:
        status = "met"
    elif today > c.due:
        status = "missed"
    elif share >= elapsed:
        status = "on-track"
    else:
        status = "behind"
    return Progress(c, label, value, share, elapsed, status)


def all_progress(session: Session) -> list[Progress]:
    rows = session.scalars(select(Commitment).order_by(Commitment.due)).all()
    return [progress(session, c) for c in rows]
