"""Priorities: the ranking the assembly adopted orders the programme list.

Governance decides a score, approval or ranked vote and announces the options in the order
decided (`governance.options_ranked`); it knows nothing of programmes. Capacity keeps a ranking
whose options name the Action Plan's areas — by key ("talent-training") or English name
("Talent training"), in any case — or the titles of programmes. The latest such ranking orders
the programme list: a programme takes the rank of its own title if the ranking names it, else
the rank of its area; programmes the ranking does not reach come after, in their usual order.

A ranking that names nothing of capacity's (the election of a bureau, say) is not kept, so an
election can never reorder the list. Keeping a ranking is logged, since it changes what every
reader of the list sees first.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from concord.capacity.programmes import AREAS
from concord.capacity.tables import PriorityRanking, Programme
from concord.db import utcnow
from concord.ledger.log import append

log = logging.getLogger("concord.capacity")


@dataclass(frozen=True, slots=True)
class Standing:
    """Where a programme stands in the adopted ranking, and which option put it there."""

    rank: int
    option: str
    reference: str


def _key(text: str) -> str:
    return " ".join(text.split()).casefold()


_AREA_OF = {_key(k): k for k in AREAS} | {_key(label): k for k, label in AREAS.items()}


def area_of(option: str) -> str | None:
    """The Action Plan area that `option` names, by key or English name, or None."""
    return _AREA_OF.get(_key(option))


def record(session: Session, payload: Mapping[str, Any]) -> PriorityRanking | None:
    """Keeps the ranking of an `options_ranked` event if it names areas or programmes; the
    kept (or already kept) row, or None. Safe to call twice with one event."""
    kept = session.scalars(
        select(PriorityRanking).where(PriorityRanking.decision_id == payload["decision_id"])
    ).first()
    if kept is not None:
        return kept  # delivered again after a crash: nothing new
    titles = {_key(t) for t in session.scalars(select(Programme.title))}
    options = [(str(r["option"]), int(r["rank"])) for r in payload.get("ranked", [])]
    if not any(area_of(o) or _key(o) in titles for o, _ in options):
        log.info(
            "ranking of %s names no area or programme; the programme list keeps its order",
            payload.get("reference"),
        )
        return None
    ranked = [{"option": o, "rank": rank, "area": area_of(o)} for o, rank in options]
    entry = append(
        session,
        "capacity.priorities",
        {
            "proposal": payload.get("reference", ""),
            "decision": payload["decision_id"],
            "method": payload.get("method", ""),
            "ranked": ranked,
        },
    )
    row = PriorityRanking(
        decision_id=payload["decision_id"],
        proposal_id=payload["proposal_id"],
        reference=str(payload.get("reference", "")),
        title=str(payload.get("title", ""))[:300],
        method=str(payload.get("method", "")),
        ranked=ranked,
        log_index=entry.index,
        recorded_at=utcnow(),
    )
    session.add(row)
    session.flush()
    log.info(
        "programme list now ordered by %s (%s): %s",
        row.reference,
        row.method,
        ", ".join(f"{r['rank']}. {r['option']}" for r in ranked),
    )
    return row


def current(session: Session) -> PriorityRanking | None:
    """The ranking that orders the list: the one of the latest decision."""
    return session.scalars(
        select(PriorityRanking).order_by(PriorityRanking.decision_id.desc()).limit(1)
    ).first()


def standings(
    ranking: PriorityRanking | None, rows: Sequence[Programme]
) -> list[tuple[Programme, Standing | None]]:
    """`rows` with their standing, ranked ones first by rank; ties and the unranked keep the
    order they came in (a stable sort)."""
    by_title: dict[str, Standing] = {}
    by_area: dict[str, Standing] = {}
    if ranking is not None:
        for r in ranking.ranked:
            standing = Standing(int(r["rank"]), str(r["option"]), ranking.reference)
            by_title.setdefault(_key(standing.option), standing)
            if r.get("area"):
                by_area.setdefault(str(r["area"]), standing)
    placed = [(p, by_title.get(_key(p.title)) or by_area.get(p.area)) for p in rows]
    return sorted(placed, key=lambda ps: (ps[1] is None, ps[1].rank if ps[1] else 0))


def in_order(session: Session, rows: Sequence[Programme]) -> list[Programme]:
    """`rows` ordered by the adopted ranking."""
    return [p for p, _ in standings(current(session), rows)]
