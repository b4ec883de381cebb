"""Deliberation: short statements, agree / disagree / pass votes, and the cached opinion map.

Delegates always take part (for their member). Observers take part only while the sponsor
keeps a public consultation open. The secretariat moderates but does not deliberate.
Statements are logged; votes on statements are deliberation signals, not decisions: they are
kept in the database (one row per person and statement, the latest counts) and not logged.

Moderation: the secretariat hides a statement with a reason (logged); it stays in the database
and the export, leaves the opinion map with its votes, and shows to readers as hidden with the
reason. Its author sees the act among their notices.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from concord.db import utcnow
from concord.errors import N_, Conflict, Forbidden, Invalid, NotFound
from concord.governance import opinion
from concord.governance.tables import Proposal, Statement, StatementVote
from concord.governance.translations import check_language
from concord.ledger.log import append
from concord.members.directory import require_active
from concord.members.people import RoleRequired, require_role
from concord.members.tables import Member, Person

VOTES = {"agree": 1, "disagree": -1, "pass": 0}
MAX_STATEMENT = 500
MAX_REASON = 500


class StatementNotFound(NotFound):
    code = "statement.unknown"
    message = N_("There is no statement {statement}.")


class StatementElsewhere(Invalid):
    code = "statement.other_proposal"
    message = N_("Statement {statement} belongs to another proposal, not {proposal}.")


class BadStatement(Invalid):
    code = "statement.invalid"
    message = N_("A statement has 1 to 500 characters.")


class BadVote(Invalid):
    code = "statement.bad_vote"
    message = N_("A vote on a statement is agree, disagree or pass.")


class NotDeliberating(Forbidden):
    code = "deliberation.closed"
    message = N_("Proposal {proposal} is not open for deliberation.")


class ConsultationClosed(Forbidden):
    code = "deliberation.members_only"
    message = N_(
        "Only members' delegates deliberate on {proposal}: there is no public consultation."
    )


class StatementHidden(Conflict):
    code = "statement.hidden"
    message = N_("Statement {statement} was hidden by the secretariat.")


class BadHideReason(Invalid):
    code = "statement.hide_reason"
    message = N_("Hiding a statement needs a reason of 1 to 500 characters.")


def participant(session: Session, person: Person, proposal: Proposal) -> Member | None:
    """The member a delegate speaks for, or None for an observer in a public consultation."""
    if proposal.status not in ("deliberation", "ballot"):
        raise NotDeliberating(proposal=proposal.reference)
    if person.role == "delegate":
        member = session.get(Member, person.member_id) if person.member_id else None
        if member is None:
            raise RoleRequired(roles="delegate")
        require_active(member)
        return member
    if person.role == "observer":
        if not proposal.public_consultation:
            raise ConsultationClosed(proposal=proposal.reference)
        return None
    raise RoleRequired(roles="delegate, observer")


def add_statement(
    session: Session, person: Person, proposal: Proposal, text: str, language: str = "en"
) -> Statement:
    """A statement written in `language` (one of the six; translations come later)."""
    check_language(language)
    member = participant(session, person, proposal)
    text = " ".join(text.split())
    if not text or len(text) > MAX_STATEMENT:
        raise BadStatement()
    statement = Statement(
        proposal_id=proposal.id,
        person_id=person.id,
        member_id=member.id if member else None,
        text=text,
        language=language,
        created_at=utcnow(),
    )
    session.add(statement)
    session.flush()
    proposal.votes_version += 1
    append(
        session,
        "governance.statement",
        {
            "proposal": proposal.reference,
            "statement": statement.id,
            "text": text,
            "language": language,
            "observer": member is None,
        },
        member_id=member.id if member else None,
    )
    return statement


def statements(session: Session, proposal: Proposal) -> list[Statement]:
    return list(
        session.scalars(
            select(Statement).where(Statement.proposal_id == proposal.id).order_by(Statement.id)
        ).all()
    )


def statements_by(session: Session, proposal: Proposal) -> list[tuple[Statement, str | None]]:
    """The statements with their member's slug (None for observers), in one query."""
    rows = session.execute(
        select(Statement, Member.slug)
        .outerjoin(Member, Member.id == Statement.member_id)
        .where(Statement.proposal_id == proposal.id)
        .order_by(Statement.id)
    ).all()
    return [(s, slug) for s, slug in rows]


def get_statement(session: Session, proposal: Proposal, statement_id: int) -> Statement:
    statement = session.get(Statement, statement_id)
    if statement is None:
        raise StatementNotFound(statement=statement_id)
    if statement.proposal_id != proposal.id:
        raise StatementElsewhere(statement=statement_id, proposal=proposal.reference)
    return statement


def hide(
    session: Session, person: Person, proposal: Proposal, statement_id: int, reason: str
) -> Statement:
    """The secretariat hides a statement with a reason; logged, and its author is told."""
    require_role(person, "secretariat")
    statement = get_statement(session, proposal, statement_id)
    reason = " ".join(reason.split())
    if not reason or len(reason) > MAX_REASON:
        raise BadHideReason()
    if statement.hidden_at is not None:
        raise StatementHidden(statement=statement_id)
    statement.hidden_at = utcnow()
    statement.hidden_reason = reason
    statement.hidden_by = person.id
    proposal.votes_version += 1  # the map loses the statement and its votes
    append(
        session,
        "statement.hidden",
        {"proposal": proposal.reference, "statement": statement.id, "reason": reason},
        member_id=statement.member_id,
    )
    session.flush()
    return statement


def notices(session: Session, person: Person) -> list[Statement]:
    """The author's statements that the secretariat hid, newest first: what they are told."""
    return list(
        session.scalars(
            select(Statement)
            .where(Statement.person_id == person.id, Statement.hidden_at.is_not(None))
            .order_by(Statement.hidden_at.desc(), Statement.id.desc())
        ).all()
    )


def vote(
    session: Session, person: Person, proposal: Proposal, statement_id: int, choice: str
) -> StatementVote:
    """Records (or changes) a person's vote on a statement of `proposal`."""
    if choice not in VOTES:
        raise BadVote()
    statement = get_statement(session, proposal, statement_id)
    if statement.hidden_at is not None:
        raise StatementHidden(statement=statement_id)
    member = participant(session, person, proposal)
    row = session.scalars(
        select(StatementVote).where(
            StatementVote.statement_id == statement_id, StatementVote.person_id == person.id
        )
    ).first()
    if row is None:
        row = StatementVote(
            proposal_id=proposal.id,
            statement_id=statement_id,
            person_id=person.id,
            member_id=member.id if member else None,
            vote=VOTES[choice],
            created_at=utcnow(),
        )
        session.add(row)
    else:
        row.vote = VOTES[choice]
        row.created_at = utcnow()
    # No `proposal.votes_version += 1` here: that rewrote the proposal row on every vote, and
    # a ballot holds that row shared for its whole transaction, so ballots and statement votes
    # queued behind each other. The map is keyed by `vote_stamp` instead.
    session.flush()
    return row


# How stale a served map may be while votes keep arriving: it is recomputed at most once per
# this many seconds per hub process (a recompute is clustering, CPU-bound and seconds long under
# load; recomputing on every read while votes arrived took most of a busy hub's CPU). A hidden
# statement or a new statement still refreshes it at once; `computed_at` in the map says when.
MAP_MAX_AGE_S = 5.0


class Clock:
    """The map cache's clocks: wall time for `computed_at` (what readers are told), monotonic
    time for the bound (a wall clock set back or forward must not keep a map forever or drop
    it early). Tests replace `CLOCK` to pass the bound without sleeping."""

    def wall(self) -> datetime:
        return utcnow()

    def monotonic(self) -> float:
        return time.monotonic()


CLOCK = Clock()


@dataclass
class _Cached:
    version: int  # proposal.votes_version: statements added or hidden
    stamp: tuple[int, str]  # (votes counted, latest vote time) when computed
    at: float  # CLOCK.monotonic() when computed
    result: dict[str, Any]


# the proposal's last map in this process, by (database, proposal id, proposal created_at): ids
# alone repeat across databases, and across tests that empty the tables
_maps: dict[tuple[str, int, str], _Cached] = {}
_maps_lock = threading.Lock()  # one recompute at a time: the others wait and take its result


def vote_stamp(session: Session, proposal: Proposal) -> tuple[int, str]:
    """(number of votes, latest vote time) on the proposal: moves with every vote or change."""
    count, latest = session.execute(
        select(func.count(StatementVote.id), func.max(StatementVote.created_at)).where(
            StatementVote.proposal_id == proposal.id
        )
    ).one()
    return int(count), latest.isoformat() if latest else ""


def opinion_map(
    session: Session, proposal: Proposal, *, max_age_s: float | None = None
) -> dict[str, Any]:
    """The map as JSON: recomputed when statements changed, or when votes changed and the last
    map is older than `max_age_s` (0: always exact, for exports matched against the votes).

    The caller commits (pages and routes do) so the database copy survives the request."""
    if max_age_s is None:
        max_age_s = MAP_MAX_AGE_S
    bind = session.get_bind()
    key = (str(bind.engine.url), proposal.id, proposal.created_at.isoformat())
    stamp = vote_stamp(session, proposal)
    hit = _maps.get(key)
    if _usable(hit, proposal, stamp, max_age_s):
        return hit.result  # type: ignore[union-attr]
    if hit is not None and hit.version == proposal.votes_version and max_age_s > 0:
        if not _maps_lock.acquire(blocking=False):
            # another thread is recomputing: serve the last map meanwhile rather than queue
            # behind it (the bound is then MAP_MAX_AGE_S plus one recompute)
            return hit.result
    else:
        _maps_lock.acquire()
    try:
        hit = _maps.get(key)
        if _usable(hit, proposal, stamp, max_age_s):
            return hit.result  # type: ignore[union-attr]
        stored = proposal.opinion_map
        if (
            stored is not None
            and proposal.map_version == proposal.votes_version
            and stored.get("stamp") == list(stamp)
        ):
            result = stored  # computed by another process (or before a restart) on these votes
        else:
            # taken before the votes are read: a vote cast while the map is computed may be
            # missing, so `computed_at` must not claim a later moment than the votes it counts
            computed_at = CLOCK.wall()
            result = build_map(session, proposal)
            result["stamp"] = list(stamp)
            result["computed_at"] = computed_at.isoformat()
            result["max_age_s"] = MAP_MAX_AGE_S  # the bound readers of the API get
            proposal.opinion_map = result
            proposal.map_version = proposal.votes_version
            session.flush()
        _maps[key] = _Cached(proposal.votes_version, stamp, CLOCK.monotonic(), result)
        return result
    finally:
        _maps_lock.release()


def _usable(
    hit: _Cached | None, proposal: Proposal, stamp: tuple[int, str], max_age_s: float
) -> bool:
    """The cached map counts the same statements, and the same votes or is young enough."""
    if hit is None or hit.version != proposal.votes_version:
        return False
    return hit.stamp == stamp or CLOCK.monotonic() - hit.at < max_age_s


def map_age_s(result: dict[str, Any]) -> float:
    """Seconds since a served map was computed, by its own `computed_at` (which another hub
    process may have written): what the API sends as `Age`. Never negative, even when that
    process's clock runs ahead of ours."""
    computed_at = datetime.fromisoformat(result["computed_at"])
    return max(0.0, (CLOCK.wall() - computed_at).total_seconds())


def map_votes(session: Session, proposal: Proposal) -> tuple[list[Statement], list[Any]]:
    """The statements the map counts (hidden ones left out) and the votes on them."""
    items = [s for s in statements(session, proposal) if s.hidden_at is None]
    rows = session.execute(
        select(StatementVote.person_id, StatementVote.statement_id, StatementVote.vote)
        .join(Statement, Statement.id == StatementVote.statement_id)
        .where(StatementVote.proposal_id == proposal.id, Statement.hidden_at.is_(None))
    ).all()
    return items, list(rows)


def build_map(session: Session, proposal: Proposal) -> dict[str, Any]:
    items, rows = map_votes(session, proposal)
    column = {s.id: j for j, s in enumerate(items)}
    people = sorted({r[0] for r in rows})
    row_of = {p: i for i, p in enumerate(people)}
    labels: dict[int, str] = {}
    if people:
        for person_id, slug in session.execute(
            select(Person.id, Member.slug)
            .join(Member, Member.id == Person.member_id)
            .where(Person.id.in_(people))
        ).all():
            labels[person_id] = slug
    r = np.array([row_of[p] for p, _s, _v in rows], dtype=np.int64)
    c = np.array([column[s] for _p, s, _v in rows], dtype=np.int64)
    v = np.array([x for _p, _s, x in rows], dtype=np.float64)
    texts = [{"id": s.id, "text": s.text} for s in items]
    if not people or not items:
        return {
            "k": 0,
            "participants": 0,
            "votes": 0,
            "points": [],
            "groups": [],
            "consensus": [],
            "statements": texts,
        }
    m = opinion.compute(r, c, v, (len(people), len(items)))
    # totals over everyone who voted, clustered or not
    agree_all = np.bincount(c[v > 0], minlength=len(items))
    disagree_all = np.bincount(c[v < 0], minlength=len(items))
    seen_all = np.bincount(c, minlength=len(items))
    groups = []
    for g in range(m.k):
        groups.append(
            {
                "id": g,
                "size": int((m.groups == g).sum()),
                "representative": [
                    {
                        "statement": items[rep.statement].id,
                        "text": items[rep.statement].text,
                        "direction": rep.direction,
                        "p_in": round(rep.p_in, 3),
                        "p_out": round(rep.p_out, 3),
                    }
                    for rep in m.repness[g]
                ],
            }
        )
    return {
        "k": m.k,
        "silhouette": round(m.silhouette, 3),
        "participants": m.n_participants,
        "votes": m.n_votes,
        "points": [
            [
                round(float(m.xy[i, 0]), 4),
                round(float(m.xy[i, 1]), 4),
                int(m.groups[i]),
                labels.get(people[i], ""),
            ]
            for i in range(len(people))
        ],
        "groups": groups,
        "consensus": [
            {"statement": items[j].id, "text": items[j].text, "gic": round(float(m.gic[j]), 3)}
            for j in m.consensus
        ],
        "statements": [
            {
                **texts[j],
                "agree": int(agree_all[j]),
                "disagree": int(disagree_all[j]),
                "pass": int(seen_all[j] - agree_all[j] - disagree_all[j]),
                "gic": round(float(m.gic[j]), 3),
            }
            for j in range(len(items))
        ],
    }
