"""Ballots and decisions: signed by members, counted under the charter, re-countable from the log.

A ballot is the canonical JSON (sorted keys, no spaces, UTF-8) of

    {"proposal": "CS-2026-1", "choice": "yes|no|abstain|objection", "reason": "…",
     "member": "kenya", "nonce": "<16–64 characters>", "time": "2026-11-22T10:00:00Z"}

signed with the member's Ed25519 key on the member's own machine. The hub verifies it against
the member's registered key and logs payload, signature and public key together, so anyone
holding the log can check each signature and recount (`recount`). A member may cast again
until the ballot closes; the last ballot counts. A nonce is used once (no replays).
"""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from concord import events, metrics
from concord.db import utcnow
from concord.errors import N_, Conflict, Forbidden, Invalid
from concord.governance import charter
from concord.governance.proposals import WrongPhase, sponsors
from concord.governance.tables import Amendment, AmendmentBallot, Ballot, Decision, Proposal
from concord.ledger.log import append, canonical_json
from concord.ledger.tables import LogEntry
from concord.members import keys
from concord.members.blocs import bloc_member_ids
from concord.members.people import acting_member, require_role
from concord.members.tables import Member, Person

CHOICES = ("yes", "no", "abstain", "objection")
FIELDS = {"proposal", "choice", "reason", "member", "nonce", "time"}
NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


class BallotClosed(Conflict):
    code = "ballot.closed"
    message = N_("The ballot on {proposal} is not open.")


class BallotMalformed(Invalid):
    code = "ballot.malformed"
    message = N_("The ballot is not valid: {reason}")


class BallotDuplicate(Invalid):
    code = "ballot.duplicate"
    message = N_("The request holds more than one ballot for “{member}”.")


class BallotReplay(Conflict):
    code = "ballot.replay"
    message = N_("This ballot's nonce has been used already: sign a new ballot.")


class CloseForbidden(Forbidden):
    code = "ballot.close_forbidden"
    message = N_("Only the sponsors or the secretariat close the ballot on {proposal}.")


def message(payload: dict[str, Any]) -> bytes:
    """The bytes a member signs."""
    return canonical_json(payload)


def make_payload(
    proposal: str,
    member: str,
    choice: str,
    reason: str = "",
    nonce: str | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """A ballot ready to sign (client side)."""
    import secrets

    return {
        "proposal": proposal,
        "choice": choice,
        "reason": reason,
        "member": member,
        "nonce": nonce or secrets.token_urlsafe(18),
        "time": (at or utcnow()).isoformat().replace("+00:00", "Z"),
    }


def target(proposal: Proposal, amendment: Amendment | None = None) -> str:
    """What a ballot names: the proposal (CS-2026-1) or one of its amendments (CS-2026-1/A3)."""
    return proposal.reference if amendment is None else f"{proposal.reference}/A{amendment.id}"


def _check_payload(payload: dict[str, Any], reference: str) -> None:
    if set(payload) != FIELDS:
        raise BallotMalformed(reason="the fields are " + ", ".join(sorted(FIELDS)))
    if not all(isinstance(payload[f], str) for f in FIELDS):
        raise BallotMalformed(reason=N_("every field is a string"))
    if payload["proposal"] != reference:
        raise BallotMalformed(reason=N_("the ballot names another proposal"))
    if payload["choice"] not in CHOICES:
        raise BallotMalformed(reason=N_("the choice is yes, no, abstain or objection"))
    if payload["choice"] == "objection" and not payload["reason"].strip():
        raise BallotMalformed(reason=N_("a formal objection states its reason"))
    if len(payload["reason"]) > 2000:
        raise BallotMalformed(reason=N_("the reason has at most 2,000 characters"))
    if not NONCE.match(payload["nonce"]):
        raise BallotMalformed(reason=N_("the nonce has 16 to 64 letters, digits, - or _"))


def is_open(proposal: Proposal) -> bool:
    if proposal.status != "ballot":
        return False
    return proposal.closes_at is None or utcnow() < proposal.closes_at


def cast(
    session: Session,
    person: Person,
    proposal: Proposal,
    items: list[dict[str, Any]],
    amendment: Amendment | None = None,
) -> list[Any]:
    """Verifies and records signed ballots ({"payload": …, "signature": …}); all or nothing.

    With `amendment`, the ballots are on that amendment (put to a ballot of its own)."""
    member = acting_member(session, person)  # refuses suspended members and other roles
    reference = target(proposal, amendment)
    if amendment is None and not is_open(proposal):
        raise BallotClosed(proposal=reference)
    if amendment is not None and (
        amendment.status != "ballot" or proposal.status != "deliberation"
    ):
        raise BallotClosed(proposal=reference)
    if not items:
        raise BallotMalformed(reason=N_("send one ballot"))
    seen: set[str] = set()
    for item in items:
        payload = item.get("payload")
        if not isinstance(payload, dict):
            raise BallotMalformed(reason=N_("the payload is an object"))
        slug = str(payload.get("member", ""))
        if slug in seen:
            raise BallotDuplicate(member=slug)
        seen.add(slug)
    recorded = []
    for item in items:
        payload, signature = item["payload"], str(item.get("signature", ""))
        _check_payload(payload, reference)
        acting_member(session, person, payload["member"])  # one's own member only
        for table in (Ballot, AmendmentBallot):
            if session.scalars(select(table.id).where(table.nonce == payload["nonce"])).first():
                raise BallotReplay()
        key = keys.verify(session, member, message(payload), signature)
        entry = append(
            session,
            "governance.ballot",
            {
                "proposal": reference,
                "payload": payload,
                "signature": signature,
                "public_key": base64.b64encode(key.public_key).decode(),
                "fingerprint": key.fingerprint,
            },
            member_id=member.id,
        )
        row: Ballot | AmendmentBallot | None
        if amendment is None:
            row = session.scalars(
                select(Ballot).where(
                    Ballot.proposal_id == proposal.id, Ballot.member_id == member.id
                )
            ).first()
            if row is None:
                row = Ballot(proposal_id=proposal.id, member_id=member.id)
                session.add(row)
        else:
            row = session.scalars(
                select(AmendmentBallot).where(
                    AmendmentBallot.amendment_id == amendment.id,
                    AmendmentBallot.member_id == member.id,
                )
            ).first()
            if row is None:
                row = AmendmentBallot(amendment_id=amendment.id, member_id=member.id)
                session.add(row)
        row.choice = payload["choice"]
        row.reason = payload["reason"]
        row.nonce = payload["nonce"]
        row.payload = payload
        row.signature = signature
        row.cast_at = utcnow()
        row.log_index = entry.index
        session.flush()
        recorded.append(row)
    metrics.count("ballot", len(recorded))
    return recorded


def ballots(session: Session, proposal: Proposal) -> list[tuple[Ballot, Member]]:
    return [
        (b, m)
        for b, m in session.execute(
            select(Ballot, Member)
            .join(Member, Member.id == Ballot.member_id)
            .where(Ballot.proposal_id == proposal.id)
            .order_by(Member.slug)
        ).all()
    ]


def close(session: Session, person: Person | None, proposal: Proposal) -> Decision:
    """Closes the ballot, applies the charter rule and records the decision. Logged.

    Counted: the last ballot of each member active at close; eligible: members active at close.
    """
    _may_close(session, person, proposal, proposal.reference)
    if proposal.status != "ballot":
        raise WrongPhase(proposal=proposal.reference, status=proposal.status, needed="ballot")
    counted = [(b.choice, b.reason, b.log_index, m) for b, m in ballots(session, proposal)]
    arithmetic = tally(session, proposal.kind, counted)
    now = utcnow()
    proposal.status = arithmetic["outcome"]
    proposal.closed_at = now
    entry = append(
        session,
        "governance.decision",
        {
            "proposal": proposal.reference,
            "kind": proposal.kind,
            "outcome": proposal.status,
            "arithmetic": arithmetic,
        },
    )
    decision = Decision(
        proposal_id=proposal.id,
        outcome=proposal.status,
        rule=arithmetic["rule"]["name"],
        arithmetic=arithmetic,
        decided_at=now,
        log_index=entry.index,
    )
    session.add(decision)
    session.flush()
    if proposal.status == "adopted":
        sponsor = session.get(Member, proposal.sponsor_id)
        payload = {
            "proposal_id": proposal.id,
            "decision_id": decision.id,
            "reference": proposal.reference,
            "title": proposal.title,
            "sponsor": sponsor.slug if sponsor else "",
        }
        if proposal.kind == "project":
            events.publish(
                session, "governance.project_adopted", {**payload, "spec": proposal.body}
            )
        elif proposal.kind == "standard":
            events.publish(
                session, "governance.standard_adopted", {**payload, "standard": proposal.body}
            )
    return decision


def tally(
    session: Session, kind: str, cast_ballots: list[tuple[str, str, int, Member]]
) -> dict[str, Any]:
    """The charter rule of `kind` applied to (choice, reason, log index, member) ballots."""
    current = charter.current(session)
    rule = current.rule_for(kind)
    active = session.scalars(select(Member).where(Member.status == "active")).all()
    active_slugs = {m.slug for m in active}
    counted = [
        {"member": m.slug, "choice": choice, "reason": reason, "log_index": index}
        for choice, reason, index, m in cast_ballots
        if m.slug in active_slugs
    ]
    slug_of = {m.id: m.slug for m in active}
    blocs = {
        name: sorted(slug_of[i] for i in bloc_member_ids(session, name) if i in slug_of)
        for name in rule.bloc_majority
    }
    arithmetic = charter.apply(rule, counted, len(active), blocs)
    arithmetic["charter_version"] = current.version
    arithmetic["bloc_members"] = blocs
    arithmetic["ballot_entries"] = sorted(b["log_index"] for b in counted)
    return arithmetic


def _may_close(session: Session, person: Person | None, proposal: Proposal, ref: str) -> None:
    if person is None or person.role == "secretariat":
        return
    try:
        member = acting_member(session, person)
    except Forbidden:
        raise CloseForbidden(proposal=ref) from None
    if member.id not in sponsors(proposal):
        raise CloseForbidden(proposal=ref)


def close_amendment(
    session: Session, person: Person | None, proposal: Proposal, amendment: Amendment
) -> Amendment:
    """Closes an amendment's own ballot under the rule of the proposal's kind. Logged; if
    adopted, the amendment's text replaces the proposal's in its language."""
    reference = target(proposal, amendment)
    _may_close(session, person, proposal, reference)
    if amendment.status != "ballot":
        raise BallotClosed(proposal=reference)
    rows = session.execute(
        select(AmendmentBallot, Member)
        .join(Member, Member.id == AmendmentBallot.member_id)
        .where(AmendmentBallot.amendment_id == amendment.id)
        .order_by(Member.slug)
    ).all()
    arithmetic = tally(
        session, proposal.kind, [(b.choice, b.reason, b.log_index, m) for b, m in rows]
    )
    amendment.status = arithmetic["outcome"]
    amendment.decided_at = utcnow()
    amendment.arithmetic = arithmetic
    if amendment.status == "adopted":
        proposal.texts = {**proposal.texts, amendment.language: amendment.text}
    append(
        session,
        "governance.decision",
        {
            "proposal": reference,
            "kind": "amendment",
            "outcome": amendment.status,
            "arithmetic": arithmetic,
        },
    )
    return amendment


def decision_of(session: Session, proposal: Proposal) -> Decision | None:
    return session.scalars(select(Decision).where(Decision.proposal_id == proposal.id)).first()


def close_due(session: Session) -> list[Decision]:
    """Closes every ballot whose closing time has passed (the hub's clock)."""
    due = session.scalars(
        select(Proposal).where(Proposal.status == "ballot", Proposal.closes_at.is_not(None))
    ).all()
    return [close(session, None, p) for p in due if p.closes_at and p.closes_at <= utcnow()]


# Re-counting from the log alone: no database, only the entries' canonical JSON.


def recount(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Recomputes every decision in `entries` (log bodies, in log order) from its ballots.

    For each ballot entry: the public key must have been registered for that member earlier in
    the log (`key.registered` / `key.rotated`) and the signature must verify over the payload.
    The last valid ballot per member before the decision counts; the charter rule, the eligible
    count and the bloc memberships are read from the decision entry, and the outcome and every
    count are computed again and compared."""
    keys_of: dict[int, set[str]] = {}
    latest: dict[str, dict[str, dict[str, Any]]] = {}  # proposal → member slug → ballot
    results = []
    for index, body in enumerate(entries):
        kind, content, member_id = body["kind"], body["content"], body.get("member")
        if kind in ("key.registered", "key.rotated"):
            keys_of.setdefault(int(content["member"]), set()).add(content["public_key"])
        elif kind == "governance.ballot":
            payload = content["payload"]
            raw = base64.b64decode(content["public_key"])
            valid = (
                member_id is not None
                and content["public_key"] in keys_of.get(int(member_id), set())
                and keys.verify_raw(raw, message(payload), content["signature"])
                and payload["proposal"] == content["proposal"]
            )
            if valid:
                latest.setdefault(content["proposal"], {})[payload["member"]] = {
                    "member": payload["member"],
                    "choice": payload["choice"],
                    "reason": payload["reason"],
                    "log_index": index,
                }
        elif kind == "governance.decision":
            logged = content["arithmetic"]
            r = logged["rule"]
            rule = charter.Rule(
                name=r["name"],
                title=r["title"],
                quorum=charter.Fraction(r["quorum"]) if r["quorum"] else None,
                threshold=charter.Fraction(r["threshold"]) if r["threshold"] else None,
                strict=r["strict"],
                max_negative=charter.Fraction(r["max_negative"]) if r["max_negative"] else None,
                bloc_majority=tuple(r["bloc_majority"]),
                max_objections=r["max_objections"],
            )
            counted_members = {b["member"] for b in logged["ballots"]}
            counted = [
                b
                for slug, b in sorted(latest.get(content["proposal"], {}).items())
                if slug in counted_members
            ]
            again = charter.apply(rule, counted, logged["eligible"], logged["bloc_members"])
            results.append(
                {
                    "proposal": content["proposal"],
                    "logged_outcome": content["outcome"],
                    "recounted_outcome": again["outcome"],
                    "counts": again["counts"],
                    "matches": again["outcome"] == content["outcome"]
                    and again["counts"] == logged["counts"]
                    and again["ballots"] == logged["ballots"]
                    and sorted(b["log_index"] for b in counted) == logged["ballot_entries"],
                }
            )
    return results


def recount_log(session: Session) -> list[dict[str, Any]]:
    """`recount` over this hub's whole log."""
    bodies = [
        json.loads(b) for b in session.scalars(select(LogEntry.body).order_by(LogEntry.index))
    ]
    return recount(bodies)


def require_secretariat(person: Person) -> None:
    require_role(person, "secretariat")
