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

from sqlalchemy import select
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
    return token.person


def revoke(session: Session, token_id: int) -> ApiToken:
    """Revokes a token at once."""
    token = session.get(ApiToken, token_id)
    if token is None:
        raise UnknownToken(token=str(token_id))
    if token.revoked_at is None:
        token.revoked_at = utcnow()
    return token


def tokens_of(session: Session, person: Person) -> list[ApiToken]:
    """A person's tokens, newest first."""
    return list(
        session.scalars(
            select(ApiToken).where(ApiToken.person_id == person.id).order_by(ApiToken.id.desc())
        ).all()
    )


def open_browser_session(session: Session, person: Person, hours: int = 12) -> str:
    """Starts a browser session and returns the cookie value."""
    cookie = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        BrowserSession(
            digest=_digest(cookie),
            person_id=person.id,
            created_at=now,
            expires_at=now + timedelta(hours=hours),
        )
    )
    session.flush()
    return cookie


def browser_person(session: Session, cookie: str) -> Person | None:
    """The person signed in with this cookie, if the session is live."""
    row = session.scalars(
        select(BrowserSession).where(BrowserSession.digest == _digest(cookie))
    ).first()
    if row is None or row.expires_at <= utcnow() or not row.person.active:
        return None
    return row.person


def close_browser_session(session: Session, cookie: str) -> None:
    """Signs a browser out."""
    row = session.scalars(
        select(BrowserSession).where(BrowserSession.digest == _digest(cookie))
    ).first()
    if row is not None:
        session.delete(row)
