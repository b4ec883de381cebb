"""API tokens and browser sessions.

A token is `cnd_<prefix>_<secret>` with 256 bits of randomness. It is shown once; the hub keeps
its SHA-256 (a slow hash buys nothing for a random 256-bit secret) and compares in constant
time. Browser sessions are random too and stored hashed, so a database leak signs no one in.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from concord.db import utcnow
from concord.errors import N_, Invalid, NotFound, Unauthenticated
from concord.members.tables import ApiToken, BrowserSession, Person

PREFIX = "cnd_"


class BadToken(Unauthenticated):
    code = "auth.bad_token"
    message = N_("The API token is not valid.")


class ExpiredToken(Unauthenticated):
    code = "auth.token_expired"
    message = N_("The API token expired on {expired}; ask for a new one.")


class RevokedToken(Unauthenticated):
    code = "auth.token_revoked"
    message = N_("The API token was revoked.")


class InactivePerson(Unauthenticated):
    code = "auth.person_inactive"
    message = N_("This account is disabled.")


class InactiveMember(Unauthenticated):
    code = "auth.member_inactive"
    message = N_("Member “{member}” is {status}: its delegates cannot sign in.")


class UnknownToken(NotFound):
    code = "token.unknown"
    message = N_("There is no token “{token}”.")


class BadLifetime(Invalid):
    code = "token.bad_lifetime"
    message = N_("A token lives between 1 and 3650 days.")


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A new token: `secret` is shown once and never stored."""

    token: ApiToken
    secret: str


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()


def issue(session: Session, person: Person, *, label: str = "", days: int = 90) -> IssuedToken:
    """Creates a token for `person` that expires after `days`."""
    if not 1 <= days <= 3650:
        raise BadLifetime()
    prefix = secrets.token_hex(6)
    secret = f"{PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    now = utcnow()
    token = ApiToken(
        person_id=person.id,
        label=label[:100],
        prefix=prefix,
        digest=_digest(secret),
        created_at=now,
        expires_at=now + timedelta(days=days),
    )
    session.add(token)
    session.flush()
    return IssuedToken(token, secret)


def authenticate(session: Session, secret: str) -> Person:
    """The person a token belongs to, or a coded `Unauthenticated` error."""
    return authenticate_token(session, secret).person


def authenticate_token(session: Session, secret: str) -> ApiToken:
    """The live token that `secret` is, or a coded `Unauthenticated` error."""
    parts = secret.strip().split("_")
    if len(parts) < 3 or parts[0] + "_" != PREFIX:
        raise BadToken()
    token = session.scalars(select(ApiToken).where(ApiToken.prefix == parts[1])).first()
    # Compare even when the prefix is unknown so timing tells nothing about which prefixes exist.
    expected = token.digest if token else b"\x00" * 32
    if not hmac.compare_digest(expected, _digest(secret.strip())) or token is None:
        raise BadToken()
    if token.revoked_at is not None:
        raise RevokedToken()
    now = utcnow()
    if token.expires_at <= now:
        raise ExpiredToken(expired=token.expires_at.date().isoformat())
    if not token.person.active:
        raise InactivePerson()
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=5):
        token.last_used_at = now  # coarse, so reads do not write on every request
    return token


def revoke(session: Session, token_id: int) -> ApiToken:
    """Revokes a token at once."""
    token = session.get(ApiToken, token_id)
    if token is None:
        raise UnknownToken(token=str(token_id))
    if token.revoked_at is None:
        token.revoked_at = utcnow()
    end_sessions(session, token=token)  # a browser signed in with it is signed out with it
    return token


def revoke_all(session: Session, person: Person) -> None:
    """Revokes every token of `person` and ends every browser session opened with them."""
    now = utcnow()
    for token in tokens_of(session, person):
        if token.revoked_at is None:
            token.revoked_at = now
    end_sessions(session, person=person)


def tokens_of(session: Session, person: Person) -> list[ApiToken]:
    """A person's tokens, newest first."""
    return list(
        session.scalars(
            select(ApiToken).where(ApiToken.person_id == person.id).order_by(ApiToken.id.desc())
        ).all()
    )


def sign_in_browser(session: Session, secret: str, hours: int = 12) -> str:
    """Signs a browser in with an API token; returns the session cookie's value.

    A delegate of a member that may not act (suspended, withdrawn) is refused here, as the
    session lookup would refuse it anyway: better a clear error than a silent sign-out.
    """
    token = authenticate_token(session, secret)
    _require_member_active(token.person)
    return open_browser_session(session, token, hours)


def open_browser_session(session: Session, token: ApiToken, hours: int = 12) -> str:
    """Starts a browser session opened with `token` and returns the cookie value."""
    cookie = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        BrowserSession(
            digest=_digest(cookie),
            person_id=token.person_id,
            token_id=token.id,
            created_at=now,
            expires_at=min(now + timedelta(hours=hours), token.expires_at),
        )
    )
    session.flush()
    return cookie


def _session_row(session: Session, cookie: str) -> BrowserSession | None:
    """The session row of this cookie, if any.

    The row is found by the SHA-256 of the cookie (an index lookup: the timing of the
    search tells nothing about a random 256-bit secret), then compared in constant time.
    """
    digest = _digest(cookie)
    row = session.scalars(select(BrowserSession).where(BrowserSession.digest == digest)).first()
    if row is None or not hmac.compare_digest(row.digest, digest):
        return None
    return row


def browser_person(session: Session, cookie: str) -> Person | None:
    """The person signed in with this cookie, if the session is live.

    Revocation, removal and suspension delete the sessions they end; this looks again at the
    token, the person and the member anyway, so that a session missed by one of those paths
    (or opened by an older version) still signs no one in.
    """
    row = _session_row(session, cookie)
    if row is None:
        return None
    now = utcnow()
    token, person = row.token, row.person
    if row.expires_at <= now or token.revoked_at is not None or token.expires_at <= now:
        return None
    if token.person_id != person.id or not person.active or not _member_active(person):
        return None
    return person


def close_browser_session(session: Session, cookie: str) -> None:
    """Signs a browser out."""
    row = _session_row(session, cookie)
    if row is not None:
        session.delete(row)


def end_sessions(
    session: Session,
    *,
    token: ApiToken | None = None,
    person: Person | None = None,
    member_id: int | None = None,
) -> int:
    """Deletes the browser sessions opened with `token`, or by `person`, or by any person of
    member `member_id`, in the caller's transaction; returns how many ended."""
    stmt = delete(BrowserSession)
    if token is not None:
        stmt = stmt.where(BrowserSession.token_id == token.id)
    elif person is not None:
        stmt = stmt.where(BrowserSession.person_id == person.id)
    elif member_id is not None:
        people = select(Person.id).where(Person.member_id == member_id)
        stmt = stmt.where(BrowserSession.person_id.in_(people))
    else:
        raise ValueError("end_sessions needs a token, a person or a member")
    result = session.execute(stmt.execution_options(synchronize_session="fetch"))
    return int(getattr(result, "rowcount", 0) or 0)


def _member_active(person: Person) -> bool:
    """Whether the member `person` acts for (if any) may act."""
    return person.member is None or person.member.status == "active"


def _require_member_active(person: Person) -> None:
    if not _member_active(person):
        assert person.member is not None
        raise InactiveMember(member=person.member.slug, status=person.member.status)
