"""Matching needs with offers: a maximum-benefit assignment, not a greedy pass.

The benefit of giving offer j to need i (same kind, different members) is

    b_ij = coverage_ij · priority_i · language_ij · timezone_ij

- coverage_ij = min(q_i, q_j) / q_i: how much of the need the offer meets;
- priority_i  = 1 + 0.5·LDC + 0.3·low income + 0.15·lower-middle income + 0.2·Global South,
  from the needing member's country (the Action Plan's "mainly developing countries");
- language_ij = 1 if they share a language, else 0.6 (0.3 for experts and training seats,
  where a shared language is the point);
- timezone_ij = 1 − 0.5·|Δ UTC offset| / 12, at least 0.5 (experts and compute teams meet).

Each kind is an independent bipartite problem; `scipy.optimize.linear_sum_assignment` solves it
exactly (Jonker–Volgenant), so the total benefit is the optimum. `benefit_matrix` is the
vectorised form; `benefit` is the same for one pair, kept for tests and explanations.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.orm import Session

from concord.capacity.tables import ExchangeItem, Match
from concord.db import utcnow
from concord.errors import N_, Conflict, Forbidden
from concord.ledger.log import append
from concord.members.countries import country
from concord.members.tables import Member

LANGUAGE_CRITICAL = {"expert", "seats"}


class NotYourMatch(Forbidden):
    code = "match.not_yours"
    message = N_("Only the two members of a match can answer it.")


class MatchDecided(Conflict):
    code = "match.decided"
    message = N_("Match {match} is already {status}.")


@dataclass(frozen=True, slots=True)
class Party:
    """What matching needs to know about one item."""

    item_id: int
    member_id: int
    kind: str
    quantity: float
    languages: frozenset[str]
    utc_offset_h: float
    priority: float


def priority_of(code: str) -> float:
    c = country(code)
    return (
        1.0
        + 0.5 * c.ldc
        + 0.3 * (c.income_group == "low")
        + 0.15 * (c.income_group == "lower-middle")
        + 0.2 * c.global_south
    )


def offset_hours(timezone: str, at: datetime | None = None) -> float:
    moment = at or utcnow()
    delta = moment.astimezone(ZoneInfo(timezone)).utcoffset()
    return delta.total_seconds() / 3600 if delta else 0.0


def benefit(need: Party, offer: Party) -> tuple[float, dict[str, float]]:
    """b_ij and its factors, for one pair (the plain version of `benefit_matrix`)."""
    if need.kind != offer.kind or need.member_id == offer.member_id:
        return 0.0, {}
    coverage = min(need.quantity, offer.quantity) / need.quantity
    shared = bool(need.languages & offer.languages)
    language = 1.0 if shared else (0.3 if need.kind in LANGUAGE_CRITICAL else 0.6)
    timezone = max(0.5, 1 - 0.5 * abs(need.utc_offset_h - offer.utc_offset_h) / 12)
    value = coverage * need.priority * language * timezone
    return value, {
        "coverage": round(coverage, 4),
        "priority": round(need.priority, 4),
        "language": language,
        "timezone": round(timezone, 4),
    }


def benefit_matrix(needs: list[Party], offers: list[Party]) -> NDArray[np.float64]:
    """b for every (need, offer) pair of one kind, vectorised: shape (len(needs), len(offers))."""
    q_need = np.array([n.quantity for n in needs])[:, None]  # (N, 1)
    q_offer = np.array([o.quantity for o in offers])[None, :]  # (1, M)
    coverage = np.minimum(q_need, q_offer) / q_need  # (N, M)
    priority = np.array([n.priority for n in needs])[:, None]
    languages = sorted({lang for p in [*needs, *offers] for lang in p.languages})
    index = {lang: k for k, lang in enumerate(languages)}

    def bits(parties: list[Party]) -> NDArray[np.float64]:
        out = np.zeros((len(parties), max(1, len(languages))))
        for row, p in enumerate(parties):
            for lang in p.languages:
                out[row, index[lang]] = 1.0
        return out

    shared = (bits(needs) @ bits(offers).T) > 0  # (N, M)
    critical = needs[0].kind in LANGUAGE_CRITICAL if needs else False
    language = np.where(shared, 1.0, 0.3 if critical else 0.6)
    off_need = np.array([n.utc_offset_h for n in needs])[:, None]
    off_offer = np.array([o.utc_offset_h for o in offers])[None, :]
    timezone = np.maximum(0.5, 1 - 0.5 * np.abs(off_need - off_offer) / 12)
    same_member = (
        np.array([n.member_id for n in needs])[:, None]
        == np.array([o.member_id for o in offers])[None, :]
    )
    b = coverage * priority * language * timezone
    b[same_member] = 0.0
    return np.asarray(b, dtype=np.float64)


def solve(needs: list[Party], offers: list[Party]) -> list[tuple[int, int, float]]:
    """The maximum-benefit assignment, kind by kind: (need index, offer index, benefit)."""
    from scipy.optimize import linear_sum_assignment  # only when matching runs

    pairs: list[tuple[int, int, float]] = []
    kinds = {p.kind for p in needs} & {p.kind for p in offers}
    for kind in sorted(kinds):
        n_idx = [i for i, p in enumerate(needs) if p.kind == kind]
        o_idx = [j for j, p in enumerate(offers) if p.kind == kind]
        b = benefit_matrix([needs[i] for i in n_idx], [offers[j] for j in o_idx])
        rows, cols = linear_sum_assignment(b, maximize=True)
        for r, c in zip(rows, cols, strict=True):
            if b[r, c] > 0:
                pairs.append((n_idx[r], o_idx[c], float(b[r, c])))
    return pairs


def _party(item: ExchangeItem, member: Member) -> Party:
    return Party(
        item.id,
        item.member_id,
        item.kind,
        item.quantity,
        frozenset(item.languages),
        offset_hours(item.timezone),
        priority_of(member.country_code),
    )


def run(session: Session) -> list[Match]:
    """Proposes matches for every open need and offer, replacing undecided proposals."""
    for old in session.scalars(select(Match).where(Match.status == "proposed")).all():
        session.delete(old)
    session.flush()
    members = {m.id: m for m in session.scalars(select(Member)).all()}
    open_items = session.scalars(select(ExchangeItem).where(ExchangeItem.status == "open")).all()
    needs = [i for i in open_items if i.side == "need"]
    offers = [i for i in open_items if i.side == "offer"]
    need_parties = [_party(i, members[i.member_id]) for i in needs]
    offer_parties = [_party(i, members[i.member_id]) for i in offers]
    proposed = []
    now = utcnow()
    for i, j, value in solve(need_parties, offer_parties):
        _value, reasons = benefit(need_parties[i], offer_parties[j])
        reasons["benefit"] = round(value, 4)
        match = Match(
            need_id=needs[i].id,
            offer_id=offers[j].id,
            quantity=min(needs[i].quantity, offers[j].quantity),
            benefit=value,
            reasons=reasons,
            status="proposed",
            need_answer="",
            offer_answer="",
            created_at=now,
        )
        session.add(match)
        proposed.append(match)
    session.flush()
    return proposed


def answer(session: Session, match: Match, member: Member, accept: bool) -> Match:
    """One side accepts or declines; when both accept, the match is accepted and logged."""
    if match.status != "proposed":
        raise MatchDecided(match=match.id, status=match.status)
    need = session.get(ExchangeItem, match.need_id)
    offer = session.get(ExchangeItem, match.offer_id)
    assert need is not None and offer is not None
    word = "accept" if accept else "decline"
    if member.id == need.member_id:
        match.need_answer = word
    elif member.id == offer.member_id:
        match.offer_answer = word
    else:
        raise NotYourMatch()
    if not accept:
        match.status = "declined"
        match.decided_at = utcnow()
    elif match.need_answer == match.offer_answer == "accept":
        match.status = "accepted"
        match.decided_at = utcnow()
        need.status = offer.status = "matched"
        append(
            session,
            "exchange.matched",
            {
                "match": match.id,
                "need": need.id,
                "offer": offer.id,
                "kind": need.kind,
                "quantity": match.quantity,
                "needing": need.member_id,
                "offering": offer.member_id,
                "reasons": match.reasons,
            },
            member_id=member.id,
        )
    session.flush()
    return match


def explain(reasons: dict[str, Any]) -> list[tuple[str, float]]:
    """The factors of a match, for display."""
    labels = {
        "coverage": N_("share of the need met"),
        "priority": N_("priority of the member"),
        "language": N_("language fit"),
        "timezone": N_("time-zone fit"),
        "benefit": N_("benefit"),
    }
    return [(labels[k], float(v)) for k, v in reasons.items() if k in labels]
