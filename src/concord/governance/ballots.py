"""Ballots and decisions: signed by members, counted under the charter, re-countable from the log.

A ballot is the canonical JSON (sorted keys, no spaces, UTF-8) of

    {"proposal": "CS-2026-1", "choice": "yes|no|abstain|objection", "reason": "…",
     "member": "kenya", "nonce": "<16–64 characters>", "time": "2026-11-22T10:00:00Z"}

signed with the member's Ed25519 key on the member's own machine. The hub verifies it against
the member's registered key and logs payload, signature and public key together, so anyone
holding the log can check each signature and recount (`recount`). A member may cast again
until the ballot closes; the last ballot counts.

Replays are refused by the rules in `admissible`, which the hub and the recount share: the
signed `time` is an ISO-8601 UTC time inside the ballot's window (from its opening to its
closing, and no more than `SKEW` ahead of the clock that receives it), strictly later than the
member's current ballot on the same question; the key is the one valid at that time; and a
nonce that the member has used once is never accepted again (kept in `BallotNonce`).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from concord import events, metrics
from concord.db import utcnow
from concord.errors import N_, ConcordError, Conflict, Forbidden, Invalid
from concord.governance import charter, decision_method, proxies, redlines
from concord.governance.proposals import WrongPhase, adopt_text, amendments, sponsors
from concord.governance.tables import (
    Amendment,
    AmendmentBallot,
    Ballot,
    BallotNonce,
    Decision,
    Proposal,
)
from concord.ledger.log import append, canonical_json
from concord.ledger.tables import LogEntry
from concord.members import keys
from concord.members.blocs import bloc_member_ids
from concord.members.people import acting_member, require_role
from concord.members.tables import Member, Person

CHOICES = ("yes", "no", "abstain", "objection")
FIELDS = {"proposal", "choice", "reason", "member", "nonce", "time"}
NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
# How far a ballot's signed time may run ahead of the receiving clock (members' clocks drift).
SKEW = timedelta(minutes=2)
# 2026-11-22T10:00:00Z, 2026-11-22T10:00:00.123456Z or …+00:00: UTC, to the microsecond at most.
TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|\+00:00)$")


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


class BallotStale(Conflict):
    code = "ballot.stale"
    message = N_(
        "This ballot was signed at {time}, not after {member}'s current ballot on {proposal} "
        "(signed at {current}): an earlier ballot cannot be sent again; sign a new one."
    )


class BallotOutOfWindow(Invalid):
    code = "ballot.out_of_window"
    message = N_(
        "The ballot's signed time {time} is outside the ballot on {proposal}, which is open "
        "from {opened} until {closes}, and at most {skew} seconds ahead of the hub's clock "
        "({now}): sign it again with your clock's current time."
    )


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
    vote: Any = None,
) -> dict[str, Any]:
    """A ballot ready to sign (client side); with `vote`, a ballot under a decision method
    (`choice` is then the method's name)."""
    import secrets

    payload = {
        "proposal": proposal,
        "choice": choice,
        "reason": reason,
        "member": member,
        "nonce": nonce or secrets.token_urlsafe(18),
        "time": (at or utcnow()).isoformat().replace("+00:00", "Z"),
    }
    if vote is not None:
        payload["vote"] = vote
    return payload


def target(proposal: Proposal, amendment: Amendment | None = None) -> str:
    """What a ballot names: the proposal (CS-2026-1) or one of its amendments (CS-2026-1/A3)."""
    return proposal.reference if amendment is None else f"{proposal.reference}/A{amendment.id}"


def _check_payload(
    payload: dict[str, Any], reference: str, method: dict[str, Any] | None = None
) -> None:
    """A well-formed ballot on `reference`; under a decision `method`, with its `vote`."""
    fields = FIELDS | {"vote"} if method else FIELDS
    if set(payload) != fields:
        raise BallotMalformed(reason="the fields are " + ", ".join(sorted(fields)))
    if not all(isinstance(payload[f], str) for f in FIELDS):
        raise BallotMalformed(reason=N_("every field is a string"))
    if payload["proposal"] != reference:
        raise BallotMalformed(reason=N_("the ballot names another proposal"))
    if method:
        if payload["choice"] != method["name"]:
            raise BallotMalformed(reason=N_("the choice names the proposal's decision method"))
        if len(payload["reason"]) > 2000:
            raise BallotMalformed(reason=N_("the reason has at most 2,000 characters"))
        decision_method.check_vote(method, payload["member"], payload["vote"], payload["reason"])
    elif payload["choice"] not in CHOICES:
        raise BallotMalformed(reason=N_("the choice is yes, no, abstain or objection"))
    if payload["choice"] == "objection" and not payload["reason"].strip():
        raise BallotMalformed(reason=N_("a formal objection states its reason"))
    if len(payload["reason"]) > 2000:
        raise BallotMalformed(reason=N_("the reason has at most 2,000 characters"))
    if not NONCE.match(payload["nonce"]):
        raise BallotMalformed(reason=N_("the nonce has 16 to 64 letters, digits, - or _"))


def parse_time(text: str) -> datetime:
    """A ballot's signed time: ISO-8601 in UTC (…Z or …+00:00), or `BallotMalformed`."""
    if not TIME.match(text):
        raise BallotMalformed(
            reason=N_("the time is an ISO-8601 UTC time like 2026-11-22T10:00:00Z")
        )
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        raise BallotMalformed(
            reason=N_("the time is an ISO-8601 UTC time like 2026-11-22T10:00:00Z")
        ) from None


def _iso(at: datetime | None) -> str:
    return at.isoformat().replace("+00:00", "Z") if at else "—"


@dataclass(frozen=True)
class Window:
    """When ballots on a question (a proposal or `REF/A<id>`) may be signed."""

    question: str
    opened: datetime
    closes: datetime | None


def admissible(
    payload: dict[str, Any],
    window: Window,
    now: datetime,
    current: datetime | None,
    nonce_used: bool,
) -> datetime:
    """The signed time of a well-formed `payload` if it may replace the member's ballot signed at
    `current`, received at `now`; otherwise the coded error. The hub and the recount share it.

    The time lies in the window and at most `SKEW` ahead of `now`; it is strictly later than the
    current ballot's, and the nonce was never used by the member: so an earlier signed ballot,
    sent again unchanged, is refused."""
    at = parse_time(payload["time"])
    after_close = window.closes is not None and at > window.closes
    if at < window.opened or after_close or at > now + SKEW:
        raise BallotOutOfWindow(
            time=payload["time"],
            proposal=window.question,
            opened=_iso(window.opened),
            closes=_iso(window.closes),
            skew=int(SKEW.total_seconds()),
            now=_iso(now),
        )
    if nonce_used:
        raise BallotReplay()
    if current is not None and at <= current:
        raise BallotStale(
            time=payload["time"],
            member=payload["member"],
            proposal=window.question,
            current=_iso(current),
        )
    return at


def _signed_time(payload: dict[str, Any] | None) -> datetime | None:
    """The signed time of a stored ballot (None for rows kept from before times were checked)."""
    try:
        return parse_time(str((payload or {}).get("time", "")))
    except BallotMalformed:
        return None


def window_of(proposal: Proposal, amendment: Amendment | None = None) -> Window:
    if amendment is not None:
        return Window(
            target(proposal, amendment), amendment.ballot_at or amendment.created_at, None
        )
    return Window(proposal.reference, proposal.ballot_at or proposal.created_at, proposal.closes_at)


def nonce_used(session: Session, member: Member, nonce: str) -> bool:
    """Whether the member ever signed a ballot with `nonce` (or any current ballot holds it)."""
    mine = select(BallotNonce.id).where(
        BallotNonce.member_id == member.id, BallotNonce.nonce == nonce
    )
    if session.scalars(mine).first():
        return True
    for table in (Ballot, AmendmentBallot):
        if session.scalars(select(table.id).where(table.nonce == nonce)).first():
            return True
    return False


def hold(session: Session, proposal: Proposal, *, closing: bool = False) -> Proposal:
    """Takes the proposal's row lock and reads it again. A ballot holds it shared until its
    transaction ends, a close exclusively: the close then waits for the ballots in flight
    (on another hub process too) and counts them, and a ballot arriving after it sees the
    proposal closed — no ballot is logged before the decision without being counted.
    (SQLite has no row locks; its one writer at a time gives the same order.)"""
    query = select(Proposal.id).where(Proposal.id == proposal.id)
    session.execute(query.with_for_update(read=not closing))
    session.refresh(proposal)
    return proposal


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
    hold(session, proposal)
    if amendment is not None:
        session.refresh(amendment)  # its ballot may have closed while we waited
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
    window = window_of(proposal, amendment)
    now = utcnow()
    for item in items:
        payload, signature = item["payload"], str(item.get("signature", ""))
        _check_payload(payload, reference, proposal.method if amendment is None else None)
        acting_member(session, person, payload["member"])  # one's own member only
        row = _current_row(session, proposal, amendment, member)
        at = admissible(
            payload,
            window,
            now,
            _signed_time(row.payload) if row is not None else None,
            nonce_used(session, member, payload["nonce"]),
        )
        key = keys.verify(session, member, message(payload), signature, at=at)
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
        if row is None:
            row = (
                Ballot(proposal_id=proposal.id, member_id=member.id)
                if amendment is None
                else AmendmentBallot(amendment_id=amendment.id, member_id=member.id)
            )
            session.add(row)
        session.add(BallotNonce(member_id=member.id, nonce=payload["nonce"], log_index=entry.index))
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


def _current_row(
    session: Session, proposal: Proposal, amendment: Amendment | None, member: Member
) -> Ballot | AmendmentBallot | None:
    """The member's current ballot on the proposal (or on the amendment)."""
    if amendment is None:
        return session.scalars(
            select(Ballot).where(Ballot.proposal_id == proposal.id, Ballot.member_id == member.id)
        ).first()
    return session.scalars(
        select(AmendmentBallot).where(
            AmendmentBallot.amendment_id == amendment.id, AmendmentBallot.member_id == member.id
        )
    ).first()


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
    hold(session, proposal, closing=True)
    if proposal.status != "ballot":
        raise WrongPhase(proposal=proposal.reference, status=proposal.status, needed="ballot")
    now = utcnow()
    rows = ballots(session, proposal)
    if proposal.method:
        arithmetic = tally_method(session, proposal, rows, now)
    else:
        counted = [(b.choice, b.reason, b.log_index, m) for b, m in rows]
        arithmetic = tally(session, proposal.kind, counted, proposal.reference, now)
    arithmetic["texts_sha256"] = redlines.digests(proposal.texts)
    arithmetic["amendments"] = [
        {"amendment": a.id, "language": a.language, "status": a.status}
        for a in amendments(session, proposal)
    ]
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
        if proposal.method:  # capacity (say) reads the ranked options; governance reads nothing
            events.publish(
                session,
                "governance.options_ranked",
                {**payload, "method": proposal.method["name"], "ranked": arithmetic["ranked"]},
            )
        elif proposal.kind == "project":
            events.publish(
                session, "governance.project_adopted", {**payload, "spec": proposal.body}
            )
        elif proposal.kind == "standard":
            events.publish(
                session, "governance.standard_adopted", {**payload, "standard": proposal.body}
            )
    return decision


def tally(
    session: Session,
    kind: str,
    cast_ballots: list[tuple[str, str, int, Member]],
    reference: str | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """The charter rule of `kind` applied to (choice, reason, log index, member) ballots; with
    `reference` and the closing time `at`, the proxies for that ballot count too."""
    current = charter.current(session)
    rule = current.rule_for(kind)
    active = session.scalars(select(Member).where(Member.status == "active")).all()
    active_slugs = {m.slug for m in active}
    counted = [
        {"member": m.slug, "choice": choice, "reason": reason, "log_index": index}
        for choice, reason, index, m in cast_ballots
        if m.slug in active_slugs
    ]
    report: list[dict[str, Any]] | None = None
    if reference is not None and at is not None:
        applying = proxies.applicable(session, reference, at)
        counted, report = proxies.expand(counted, applying, active_slugs, current.proxy_cap)
    slug_of = {m.id: m.slug for m in active}
    blocs = {
        name: sorted(slug_of[i] for i in bloc_member_ids(session, name) if i in slug_of)
        for name in rule.bloc_majority
    }
    arithmetic = charter.apply(rule, counted, len(active), blocs)
    arithmetic["charter_version"] = current.version
    arithmetic["bloc_members"] = blocs
    arithmetic["ballot_entries"] = sorted(b["log_index"] for b in counted if not b.get("proxy"))
    if report is not None:
        arithmetic["proxies"] = report
        arithmetic["proxy_cap"] = current.proxy_cap
    return arithmetic


def method_arithmetic(
    spec: dict[str, Any],
    counted: list[dict[str, Any]],
    eligible: int,
    blocs: dict[str, list[str]],
    seed: str,
) -> dict[str, Any]:
    """The decision method `spec` applied to counted ballots ({"member", "vote", "reason",
    "log_index", maybe "proxy"}): what the hub logs and the recount recomputes."""
    arithmetic = decision_method.count(spec, counted, blocs, seed)
    arithmetic["rule"] = {"name": "method:" + spec["name"], "title": spec["name"]}
    arithmetic["eligible"] = eligible
    arithmetic["cast"] = len(counted)
    arithmetic["ballots"] = [
        {
            "member": b["member"],
            "choice": spec["name"],
            "vote": b["vote"],
            "reason": b.get("reason", ""),
            **({"proxy": b["proxy"]} if b.get("proxy") else {}),
        }
        for b in sorted(counted, key=lambda b: b["member"])
    ]
    arithmetic["bloc_members"] = blocs
    return arithmetic


def tally_method(
    session: Session, proposal: Proposal, rows: list[tuple[Ballot, Member]], at: datetime
) -> dict[str, Any]:
    """The proposal's decision method over its ballots and proxies, under the charter's bloc
    condition unless the method names its own."""
    current = charter.current(session)
    spec = dict(proposal.method or {})
    if not spec.get("condition"):
        spec.pop("condition", None)
        condition = decision_method.charter_condition(current.rule_for(proposal.kind).bloc_majority)
        if condition:
            spec["condition"] = condition
    active = session.scalars(select(Member).where(Member.status == "active")).all()
    active_slugs = {m.slug for m in active}
    counted = [
        {
            "member": m.slug,
            "choice": b.choice,
            "vote": (b.payload or {}).get("vote"),
            "reason": b.reason,
            "log_index": b.log_index,
        }
        for b, m in rows
        if m.slug in active_slugs
    ]
    applying = proxies.applicable(session, proposal.reference, at)
    counted, report = proxies.expand(counted, applying, active_slugs, current.proxy_cap)
    slug_of = {m.id: m.slug for m in active}
    names = spec["condition"]["blocs"] if spec.get("condition") else []
    blocs = {
        name: sorted(slug_of[i] for i in bloc_member_ids(session, name) if i in slug_of)
        for name in names
    }
    arithmetic = method_arithmetic(spec, counted, len(active), blocs, proposal.reference)
    arithmetic["charter_version"] = current.version
    arithmetic["ballot_entries"] = sorted(b["log_index"] for b in counted if not b.get("proxy"))
    arithmetic["proxies"] = report
    arithmetic["proxy_cap"] = current.proxy_cap
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
    hold(session, proposal, closing=True)  # the amendment's ballots in flight count too
    session.refresh(amendment)
    # As when casting: an amendment's ballot lives only while its proposal is deliberated (a
    # withdrawn proposal's amendment must not be decided, nor its decision logged).
    if amendment.status != "ballot" or proposal.status != "deliberation":
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
        adopt_text(session, proposal, amendment)
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


def ranked_options(session: Session, proposal: Proposal) -> list[dict[str, Any]]:
    """The options in the order the proposal's decision method decided them — what other
    domains (capacity's programme list) read; empty without a decided method."""
    decision = decision_of(session, proposal)
    if decision is None or decision.outcome != "adopted":
        return []
    return list(decision.arithmetic.get("ranked", []))


def decision_of(session: Session, proposal: Proposal) -> Decision | None:
    return session.scalars(select(Decision).where(Decision.proposal_id == proposal.id)).first()


def close_due(session: Session) -> list[Decision]:
    """Closes every ballot whose closing time has passed (the hub's clock)."""
    due = session.scalars(
        select(Proposal).where(Proposal.status == "ballot", Proposal.closes_at.is_not(None))
    ).all()
    return [close(session, None, p) for p in due if p.closes_at and p.closes_at <= utcnow()]


# Re-counting from the log alone: no database, only the entries' canonical JSON.


@dataclass
class Recount:
    """The state a reader of the log builds, entry by entry, to recount every decision: who is
    a member in good standing, which key each member holds since when, each question's window,
    each member's latest admissible ballot and every nonce it used."""

    key_history: keys.KeyHistory = field(default_factory=keys.KeyHistory)
    active: dict[int, str] = field(default_factory=dict)  # member id → slug
    windows: dict[str, Window] = field(default_factory=dict)
    latest: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    used: dict[int, set[str]] = field(default_factory=dict)
    results: list[dict[str, Any]] = field(default_factory=list)
    methods: dict[str, dict[str, Any]] = field(default_factory=dict)  # proposal → method
    originals: dict[str, dict[str, str]] = field(default_factory=dict)  # proposal → texts
    amended: dict[str, dict[str, Any]] = field(default_factory=dict)  # REF/A<id> → amendment
    adopted: dict[str, list[str]] = field(default_factory=dict)  # proposal → REF/A<id>, in order
    proxies: dict[int, dict[str, Any]] = field(default_factory=dict)  # entry → proxy
    proxy_nonces: set[str] = field(default_factory=set)

    def read(self, index: int, body: dict[str, Any]) -> None:
        """Takes one entry into account. A malformed entry (the hub signs whatever it logs)
        counts for nothing; a malformed decision is a decision that does not recount."""
        try:
            self._read(index, body)
        except (KeyError, TypeError, ValueError, AttributeError):
            if body.get("kind") == "governance.decision":
                content = body.get("content")
                logged = content if isinstance(content, dict) else {}
                self.results.append(
                    {
                        "proposal": str(logged.get("proposal")),
                        "logged_outcome": logged.get("outcome"),
                        "recounted_outcome": None,
                        "counts": {},
                        "matches": False,
                        "differences": [
                            {"field": "decision", "entry": index, "logged": None, "recounted": None}
                        ],
                    }
                )

    def _read(self, index: int, body: dict[str, Any]) -> None:
        kind, content = body["kind"], body["content"]
        self.key_history.observe(body)
        if kind == "governance.proposal":
            ref = str(content["proposal"])
            self.originals[ref] = dict(content["texts"])
            if content.get("method"):
                self.methods[ref] = content["method"]
        elif kind == "governance.amendment":
            question = f"{content['proposal']}/A{content['amendment']}"
            self.amended[question] = {"language": content["language"], "text": content["text"]}
        elif kind == "governance.amendment_decided" and content.get("decision") == "accepted":
            self._adopt(f"{content['proposal']}/A{content['amendment']}")
        elif kind == "governance.proxy":
            self._proxy(index, body)
        elif kind == "governance.proxy_revoked":
            self.proxies.pop(int(content["proxy"]), None)
        elif kind in ("member.admitted", "member.reinstated"):
            self.active[int(content["member"])] = str(content["slug"])
        elif kind in ("member.suspended", "member.withdrawn"):
            self.active.pop(int(content["member"]), None)
        elif kind == "governance.phase" and content.get("status") == "ballot":
            closes = content.get("closes_at")
            self.windows[content["proposal"]] = Window(
                content["proposal"],
                keys.parse_log_time(body["time"]),
                datetime.fromisoformat(closes).astimezone(UTC) if closes else None,
            )
        elif kind == "governance.amendment_ballot":
            question = f"{content['proposal']}/A{content['amendment']}"
            self.windows[question] = Window(question, keys.parse_log_time(body["time"]), None)
        elif kind == "governance.ballot":
            self._ballot(index, body)
        elif kind == "governance.decision":
            self.results.append(self._decision(body))
            if "/" in str(content["proposal"]) and content["outcome"] == "adopted":
                self._adopt(str(content["proposal"]))

    def _adopt(self, question: str) -> None:
        self.adopted.setdefault(question.split("/")[0], []).append(question)

    def _proxy(self, index: int, body: dict[str, Any]) -> None:
        """Keeps a proxy the hub was right to accept: well-formed, timely, a fresh nonce,
        signed by the delegating member's key valid at its signed time."""
        content, member_id = body["content"], body.get("member")
        payload = content.get("payload")
        try:
            at, start, end = proxies.check_payload(payload)
        except ConcordError:
            return
        if member_id is None or self.active.get(int(member_id)) != payload["member"]:
            return
        if not proxies.timely(at, keys.parse_log_time(body["time"])):
            return
        if payload["nonce"] in self.proxy_nonces:
            return
        if not (
            self.key_history.valid(int(member_id), str(content.get("public_key")), at)
            and keys.verify_raw(
                base64.b64decode(str(content["public_key"])),
                proxies.message(payload),
                str(content.get("signature")),
            )
        ):
            return
        self.proxy_nonces.add(payload["nonce"])
        self.proxies[index] = {
            "member": payload["member"],
            "holder": payload["holder"],
            "proposal": payload["proposal"],
            "from": start,
            "until": end,
            "entry": index,
        }

    def texts(self, reference: str) -> dict[str, str]:
        """The proposal's texts from the log: the originals with adopted amendments merged."""
        out = dict(self.originals.get(reference, {}))
        by_language: dict[str, list[str]] = {}
        for question in self.adopted.get(reference, []):
            amendment = self.amended[question]
            by_language.setdefault(amendment["language"], []).append(amendment["text"])
        for language, texts in by_language.items():
            out[language] = redlines.merge(out.get(language, ""), texts)
        return out

    def _ballot(self, index: int, body: dict[str, Any]) -> None:
        """Keeps the ballot if the hub was right to accept it; a ballot the hub should have
        refused (forged, replayed, stale, out of its window, under a retired key) is ignored."""
        content, member_id = body["content"], body.get("member")
        payload, question = content.get("payload"), content.get("proposal")
        window = self.windows.get(str(question))
        if member_id is None or window is None or not isinstance(payload, dict):
            return
        member_id = int(member_id)
        if self.active.get(member_id) != payload.get("member"):
            return  # not a member in good standing, or a ballot for another member
        slug = str(payload["member"])
        mine = self.latest.setdefault(str(question), {})
        current = mine[slug]["time"] if slug in mine else None
        try:
            _check_payload(payload, str(question), self.methods.get(str(question)))
            at = admissible(
                payload,
                window,
                keys.parse_log_time(body["time"]),
                current,
                payload["nonce"] in self.used.get(member_id, set()),
            )
        except ConcordError:
            return
        if not (
            self.key_history.valid(member_id, str(content.get("public_key")), at)
            and keys.verify_raw(
                base64.b64decode(str(content["public_key"])),
                message(payload),
                str(content.get("signature")),
            )
        ):
            return
        self.used.setdefault(member_id, set()).add(payload["nonce"])
        mine[slug] = {
            "member": slug,
            "choice": payload["choice"],
            "reason": payload["reason"],
            "log_index": index,
            "time": at,
        }
        if "vote" in payload:
            mine[slug]["vote"] = payload["vote"]

    def _decision(self, body: dict[str, Any]) -> dict[str, Any]:
        """The decision recomputed from the ballots read so far; the charter rule and the bloc
        memberships are the decision's own, the counted ballots and the eligible count are not."""
        content = body["content"]
        logged = content["arithmetic"]
        reference = str(content["proposal"])
        members = set(self.active.values())
        counted = [
            b for slug, b in sorted(self.latest.get(reference, {}).items()) if slug in members
        ]
        if "proxies" in logged:  # decisions from before proxies carry none
            at = keys.parse_log_time(body["time"])
            applying = proxies.applying(self.proxies.values(), reference, at)
            counted, report = proxies.expand(counted, applying, members, logged["proxy_cap"])
        eligible = len(members)
        method = self.methods.get(reference)
        if method is not None or "method" in logged:
            again = self._method(reference, method, counted, eligible, logged)
        else:
            again = charter.apply(
                _rule_of(logged["rule"]), counted, eligible, logged["bloc_members"]
            )
        differences = _differences(counted, eligible, logged)
        if "proxies" in logged and report != logged["proxies"]:
            differences.append(
                {"field": "proxies", "logged": logged["proxies"], "recounted": report}
            )
        if "texts_sha256" in logged:
            recomputed = redlines.digests(self.texts(reference))
            if recomputed != logged["texts_sha256"]:
                differences.append(
                    {
                        "field": "texts_sha256",
                        "logged": logged["texts_sha256"],
                        "recounted": recomputed,
                    }
                )
        if again["outcome"] != content["outcome"]:
            differences.append(
                {"field": "outcome", "logged": content["outcome"], "recounted": again["outcome"]}
            )
        for name in ("counts", "result", "ranked"):
            if name in again and again[name] != logged.get(name):
                differences.append(
                    {"field": name, "logged": logged.get(name), "recounted": again[name]}
                )
        result: dict[str, Any] = {
            "proposal": content["proposal"],
            "logged_outcome": content["outcome"],
            "recounted_outcome": again["outcome"],
            "counts": again.get("counts", {}),
            "matches": not differences,
        }
        if differences:
            result["differences"] = differences
        return result

    def _method(
        self,
        reference: str,
        method: dict[str, Any] | None,
        counted: list[dict[str, Any]],
        eligible: int,
        logged: dict[str, Any],
    ) -> dict[str, Any]:
        """The proposal's method counted again; the condition is the decision's own when the
        proposal named none (the charter's), and must be the proposal's when it did."""
        spec = dict(method or {})
        used = logged.get("method", {})
        if not spec.get("condition") and used.get("condition"):
            spec["condition"] = used["condition"]
        if spec != used:
            return {"outcome": "method_differs", "method": spec}
        try:
            return method_arithmetic(spec, counted, eligible, logged["bloc_members"], reference)
        except ConcordError:
            return {"outcome": "invalid"}


def _rule_of(r: dict[str, Any]) -> charter.Rule:
    def fraction(text: str | None) -> Fraction | None:
        return Fraction(text) if text else None

    return charter.Rule(
        name=r["name"],
        title=r["title"],
        quorum=fraction(r["quorum"]),
        threshold=fraction(r["threshold"]),
        strict=r["strict"],
        max_negative=fraction(r["max_negative"]),
        bloc_majority=tuple(r["bloc_majority"]),
        max_objections=r["max_objections"],
    )


def _differences(
    counted: list[dict[str, Any]], eligible: int, logged: dict[str, Any]
) -> list[dict[str, Any]]:
    """Member by member, the ballots that the log says count against those the decision
    counted: an omitted, added or changed ballot is named with its log entry."""
    found = {b["member"]: b for b in counted}
    own_entries = sorted(b["log_index"] for b in counted if not b.get("proxy"))
    claimed = {b["member"]: b for b in logged.get("ballots", [])}
    claimed_entries = set(logged.get("ballot_entries", []))
    out: list[dict[str, Any]] = []
    for slug in sorted(found.keys() | claimed.keys()):
        mine, theirs = found.get(slug), claimed.get(slug)
        same = (
            mine is not None
            and theirs is not None
            and (mine["choice"], mine["reason"]) == (theirs["choice"], theirs.get("reason", ""))
            and mine.get("vote") == theirs.get("vote")
            and mine.get("proxy") == theirs.get("proxy")
            and mine["log_index"] in claimed_entries
        )
        if not same:
            out.append(
                {
                    "field": f"ballot:{slug}",
                    "entry": mine["log_index"] if mine else None,
                    "logged": theirs["choice"] if theirs else None,
                    "recounted": mine["choice"] if mine else None,
                }
            )
    if own_entries != sorted(claimed_entries) and not out:
        out.append(
            {"field": "ballot_entries", "logged": sorted(claimed_entries), "recounted": own_entries}
        )
    if eligible != logged.get("eligible"):
        out.append({"field": "eligible", "logged": logged.get("eligible"), "recounted": eligible})
    return out


def recount(entries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Recomputes every decision in `entries` (log bodies, in log order) from the log alone.

    The counted ballots are derived from the ballot entries, not taken from the decision: per
    question and member, the latest ballot that the hub was right to accept — signed by the key
    valid at its signed time and log position (`keys.KeyHistory`), admissible by the rules of
    `admissible` (window, strictly later time, unused nonce), by a member in good standing —
    among members in good standing at the decision. The charter rule is applied again and
    outcome, counts, counted ballots and eligible count compared; each result that does not
    match lists its `differences`, naming the member and log entry of each ballot concerned."""
    state = Recount()
    for index, body in enumerate(entries):
        state.read(index, body)
    return state.results


def recount_log(session: Session) -> list[dict[str, Any]]:
    """`recount` over this hub's whole log."""
    bodies = [
        json.loads(b) for b in session.scalars(select(LogEntry.body).order_by(LogEntry.index))
    ]
    return recount(bodies)


def require_secretariat(person: Person) -> None:
    require_role(person, "secretariat")
