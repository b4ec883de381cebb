"""Proxies: a member delegates its vote to another member, on one proposal or for a period.

A proxy is the canonical JSON of

    {"proxy": "grant", "member": "kenya", "holder": "brazil",
     "proposal": "CR-2026-3",                               # or "" with a period:
     "from": "", "until": "",                               # ISO UTC times, both or neither
     "nonce": "<16–64 characters>", "time": "2026-11-22T10:00:00Z"}

signed with the *delegating* member's key (the holder does not sign for it). The hub checks it
like a ballot — the key valid at the signed time, a nonce never used, the signed time within
`SKEW` of its clock and at most `MAX_AGE` old — and logs payload, signature and public key.

When a ballot closes, the proxies that apply are those not revoked, naming the proposal or with
a period holding the closing time; of several by one member, the latest granted. Each counts as
a ballot of the *delegating* member with the holder's choice or vote — so a bloc condition
counts it in the delegating member's own bloc — unless:

- the delegating member voted itself: **its own ballot wins**, whenever it was cast;
- the holder cast no ballot of its own (a proxy carries the holder's vote, never another proxy);
- the holder carries the charter's `[proxies] max_per_holder` already (earlier grants first);
- the delegating member is not in good standing at the close.

The decision lists every applicable proxy and why it counted or not. The delegating member's
delegate may revoke a proxy until the ballot closes (for a proposal's proxy: until its decision);
the revocation is logged. A recount rebuilds all of this from the log.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from concord.db import utcnow
from concord.errors import N_, Conflict, Invalid, NotFound
from concord.governance import charter
from concord.governance.proposals import FINAL, REFERENCE, get
from concord.governance.tables import Proxy
from concord.ledger.log import append, canonical_json
from concord.members import keys
from concord.members.directory import get_member
from concord.members.people import acting_member
from concord.members.tables import Member, Person

FIELDS = {"proxy", "member", "holder", "proposal", "from", "until", "nonce", "time"}
SKEW = timedelta(minutes=2)
MAX_AGE = timedelta(hours=1)


class ProxyInvalid(Invalid):
    code = "proxy.invalid"
    message = N_("The proxy is not valid: {reason}")


class ProxyCapReached(Conflict):
    code = "proxy.cap"
    message = N_("{holder} already carries {cap} proxies, the most the charter allows.")


class ProxyNotFound(NotFound):
    code = "proxy.unknown"
    message = N_("There is no proxy {proxy} of your member.")


class ProxyFinal(Conflict):
    code = "proxy.final"
    message = N_("The ballot this proxy was given for has closed: it can no longer be revoked.")


# Why an applicable proxy counted or not, as the decision page shows it.
REASONS = {
    "counted": N_("counted"),
    "own_vote": N_("the member voted itself: its own ballot wins"),
    "holder_silent": N_("the holder cast no ballot"),
    "over_cap": N_("the holder carries the most proxies allowed"),
    "not_in_good_standing": N_("the member is not in good standing"),
}
SHAPE = N_("the fields are proxy, member, holder, proposal, from, until, nonce and time")
SCOPE = N_("a proxy names a proposal, or a period with from and until, not both")
SELF = N_("a member cannot hold its own proxy")
HOLDER = N_("the holder is named by its handle, like “kenya”")
TIME = N_("the signed time is not within minutes of the hub's clock")
NONCE = N_("the nonce has 16 to 64 letters, digits, - or _, and is used once")


def message(payload: Mapping[str, Any]) -> bytes:
    return canonical_json(dict(payload))


def make_payload(
    member: str,
    holder: str,
    proposal: str = "",
    start: datetime | None = None,
    end: datetime | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """A proxy ready to sign (client side)."""
    return {
        "proxy": "grant",
        "member": member,
        "holder": holder,
        "proposal": proposal,
        "from": _iso(start) if start else "",
        "until": _iso(end) if end else "",
        "nonce": secrets.token_urlsafe(18),
        "time": _iso(at or utcnow()),
    }


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def check_payload(payload: Any) -> tuple[datetime, datetime | None, datetime | None]:
    """The signed time and the period of a well-formed proxy, or `ProxyInvalid`."""
    from concord.governance.ballots import NONCE as NONCE_RE
    from concord.governance.ballots import BallotMalformed, parse_time

    if not isinstance(payload, dict) or set(payload) != FIELDS:
        raise ProxyInvalid(reason=SHAPE)
    if not all(isinstance(payload[f], str) for f in FIELDS) or payload["proxy"] != "grant":
        raise ProxyInvalid(reason=SHAPE)
    if payload["member"] == payload["holder"]:
        raise ProxyInvalid(reason=SELF)
    if not payload["holder"] or payload["holder"].isdigit():
        raise ProxyInvalid(reason=HOLDER)  # counted by handle: an id would never match
    if not NONCE_RE.match(payload["nonce"]):
        raise ProxyInvalid(reason=NONCE)
    try:
        at = parse_time(payload["time"])
        start = parse_time(payload["from"]) if payload["from"] else None
        end = parse_time(payload["until"]) if payload["until"] else None
    except BallotMalformed:
        raise ProxyInvalid(reason=TIME) from None
    period = start is not None and end is not None and start < end
    if bool(payload["proposal"]) == period or (not period and (start or end)):
        raise ProxyInvalid(reason=SCOPE)
    if payload["proposal"] and not REFERENCE.match(payload["proposal"]):
        raise ProxyInvalid(reason=SCOPE)  # a reference like CR-2026-3, never an id
    return at, start, end


def timely(at: datetime, now: datetime) -> bool:
    return now - MAX_AGE <= at <= now + SKEW


def live(session: Session, holder: Member) -> list[Proxy]:
    """The unrevoked proxies `holder` carries that may still apply to a ballot."""
    now = utcnow()
    out = []
    for p in session.scalars(
        select(Proxy).where(Proxy.holder_id == holder.id, Proxy.revoked_at.is_(None))
    ):
        if p.proposal:
            if get(session, p.proposal).status not in FINAL:
                out.append(p)
        elif p.ends_at is None or p.ends_at > now:
            out.append(p)
    return out


def grant(session: Session, person: Person, item: Mapping[str, Any]) -> Proxy:
    """Verifies and records a signed proxy (from the delegate of the delegating member)."""
    member = acting_member(session, person)
    payload, signature = item.get("payload"), str(item.get("signature", ""))
    at, start, end = check_payload(payload)
    assert isinstance(payload, dict)
    acting_member(session, person, payload["member"])  # one's own member only
    holder = get_member(session, payload["holder"])
    if holder.slug != payload["holder"]:
        raise ProxyInvalid(reason=HOLDER)
    if holder.status != "active":
        raise ProxyInvalid(reason=N_("the holder is not a member in good standing"))
    if payload["proposal"]:
        proposal = get(session, payload["proposal"])
        if proposal.status in FINAL:
            raise ProxyFinal()
    now = utcnow()
    if not timely(at, now):
        raise ProxyInvalid(reason=TIME)
    if session.scalars(select(Proxy.id).where(Proxy.nonce == payload["nonce"])).first():
        raise ProxyInvalid(reason=NONCE)
    cap = charter.current(session).proxy_cap
    if len(live(session, holder)) >= cap:
        raise ProxyCapReached(holder=holder.slug, cap=cap)
    key = keys.verify(session, member, message(payload), signature, at=at)
    entry = append(
        session,
        "governance.proxy",
        {
            "payload": payload,
            "signature": signature,
            "public_key": base64.b64encode(key.public_key).decode(),
            "fingerprint": key.fingerprint,
        },
        member_id=member.id,
    )
    row = Proxy(
        member_id=member.id,
        holder_id=holder.id,
        proposal=payload["proposal"] or None,
        starts_at=start,
        ends_at=end,
        nonce=payload["nonce"],
        payload=payload,
        signature=signature,
        created_at=now,
        log_index=entry.index,
    )
    session.add(row)
    session.flush()
    return row


def revoke(session: Session, person: Person, proxy_id: int) -> Proxy:
    """The delegating member withdraws a proxy (until its proposal's ballot closes). Logged."""
    member = acting_member(session, person)
    row = session.get(Proxy, proxy_id)
    if row is None or row.member_id != member.id or row.revoked_at is not None:
        raise ProxyNotFound(proxy=proxy_id)
    if row.proposal and get(session, row.proposal).status in FINAL:
        raise ProxyFinal()
    row.revoked_at = utcnow()
    append(
        session,
        "governance.proxy_revoked",
        {"proxy": row.log_index, "member": member.slug},
        member_id=member.id,
    )
    return row


def of_member(session: Session, member: Member, reference: str) -> list[Proxy]:
    """The proxies `member` gave for the proposal `reference`, newest first (the page's)."""
    return list(
        session.scalars(
            select(Proxy)
            .where(Proxy.member_id == member.id, Proxy.proposal == reference)
            .order_by(Proxy.id.desc())
        )
    )


def every(session: Session) -> list[Proxy]:
    """Every proxy, newest first."""
    return list(session.scalars(select(Proxy).order_by(Proxy.id.desc())))


def public(session: Session, row: Proxy) -> dict[str, Any]:
    giver, holder = session.get(Member, row.member_id), session.get(Member, row.holder_id)
    return {
        "id": row.id,
        "member": giver.slug if giver else "",
        "holder": holder.slug if holder else "",
        "proposal": row.proposal,
        "from": _iso(row.starts_at) if row.starts_at else None,
        "until": _iso(row.ends_at) if row.ends_at else None,
        "payload": row.payload,
        "signature": row.signature,
        "log_index": row.log_index,
        "revoked": row.revoked_at is not None,
    }


def applicable(session: Session, reference: str, at: datetime) -> list[dict[str, Any]]:
    """The unrevoked proxies as plain data, in log order (see `applying`)."""
    rows = session.scalars(
        select(Proxy).where(Proxy.revoked_at.is_(None)).order_by(Proxy.log_index)
    ).all()
    plain = [
        {
            "member": r.payload["member"],
            "holder": r.payload["holder"],
            "proposal": r.payload["proposal"],
            "from": r.starts_at,
            "until": r.ends_at,
            "entry": r.log_index,
        }
        for r in rows
    ]
    return applying(plain, reference, at)


# Pure: the hub at close and the recount from the log share these.


def applying(
    proxies: Iterable[Mapping[str, Any]], reference: str, at: datetime
) -> list[dict[str, Any]]:
    """Of unrevoked proxies in log order, those for `reference` or with a period holding `at`;
    a member's latest one only."""
    latest: dict[str, dict[str, Any]] = {}
    for p in proxies:
        if p["proposal"] == reference or (
            not p["proposal"] and p["from"] is not None and p["from"] <= at <= p["until"]
        ):
            latest[p["member"]] = dict(p)
    return sorted(latest.values(), key=lambda p: p["entry"])


def expand(
    counted: Sequence[Mapping[str, Any]],
    proxies: Sequence[Mapping[str, Any]],
    members: set[str],
    cap: int,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The counted ballots with a ballot for each delegating member whose proxy counts, and a
    report of every applicable proxy: {"member", "holder", "entry", "counted", "why"}.

    A proxy ballot copies the holder's own ballot (choice, vote), under the delegating member's
    name, with "proxy": holder and the holder's ballot's log index."""
    own = {b["member"]: b for b in counted}
    carried: dict[str, int] = {}
    out = [dict(b) for b in counted]
    report = []
    for p in proxies:
        member, holder = p["member"], p["holder"]
        why = "counted"
        if member not in members:
            why = "not_in_good_standing"
        elif member in own:
            why = "own_vote"
        elif holder not in own:
            why = "holder_silent"
        elif carried.get(holder, 0) >= cap:
            why = "over_cap"
        if why == "counted":
            carried[holder] = carried.get(holder, 0) + 1
            out.append({**own[holder], "member": member, "reason": "", "proxy": holder})
        report.append(
            {
                "member": member,
                "holder": holder,
                "entry": p["entry"],
                "counted": why == "counted",
                "why": why,
            }
        )
    out.sort(key=lambda b: b["member"])
    return out, report
