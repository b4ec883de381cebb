"""Members' Ed25519 keys.

A member signs its ballots and updates with a private key that stays on its own machine; the
hub records only the public half. Registering a new key retires the old one (rotation); both
acts are logged, so anyone can tell which key was valid when: a key is valid from its
`key.registered` / `key.rotated` entry (its time and position in the log) until the next such
entry of the same member. A signature counts only under the key valid at its signed time and at
the position where it is logged — on the hub (`verify(…, at=…)`) and in a recount from the log
alone (`KeyHistory`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from concord.db import utcnow
from concord.errors import N_, Conflict, Invalid, NotFound
from concord.ledger.log import append
from concord.members.tables import Member, MemberKey


class MalformedKey(Invalid):
    code = "key.malformed"
    message = N_(
        "The public key is not an Ed25519 key: give 32 bytes in base64, or a PEM "
        "“PUBLIC KEY” block."
    )


class KeyInUse(Conflict):
    code = "key.in_use"
    message = N_("This public key is registered already.")


class NoKey(NotFound):
    code = "key.none"
    message = N_("Member “{member}” has no registered key: run `concord keys generate`.")


class KeyNotValidAt(Invalid):
    code = "key.not_valid_at"
    message = N_(
        "The member's key {fingerprint} was registered at {registered}, after the signed time "
        "{time}: a signature counts only under the key valid when it was made."
    )


class BadSignature(Invalid):
    code = "signature.invalid"
    message = N_("The signature does not match the member's registered key.")


def parse_public_key(text: str) -> bytes:
    """32 raw bytes from base64 or PEM text, or `MalformedKey`."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode())
            if not isinstance(key, Ed25519PublicKey):
                raise MalformedKey()
            return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        raw = base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error, TypeError) as exc:
        raise MalformedKey() from exc
    if len(raw) != 32:
        raise MalformedKey()
    try:
        Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise MalformedKey() from exc
    return raw


def fingerprint(raw: bytes) -> str:
    """SHA-256 of the raw public key, in hex: how people compare keys."""
    return hashlib.sha256(raw).hexdigest()


def register(session: Session, member: Member, public_key: str) -> MemberKey:
    """Records `public_key` as the member's key, retiring the previous one."""
    raw = parse_public_key(public_key)
    if session.scalars(select(MemberKey).where(MemberKey.public_key == raw)).first():
        raise KeyInUse()
    now = utcnow()
    previous = active_key(session, member)
    if previous is not None:
        previous.retired_at = now
    key = MemberKey(
        member_id=member.id, public_key=raw, fingerprint=fingerprint(raw), created_at=now
    )
    session.add(key)
    session.flush()
    entry = append(
        session,
        "key.rotated" if previous else "key.registered",
        {
            "member": member.id,
            "public_key": base64.b64encode(raw).decode(),
            "fingerprint": key.fingerprint,
            "replaces": previous.fingerprint if previous else None,
        },
        member_id=member.id,
    )
    # The key's interval is the log's: the same instant that a recount from the log reads.
    key.created_at = entry.created_at
    if previous is not None:
        previous.retired_at = entry.created_at
    return key


def active_key(session: Session, member: Member) -> MemberKey | None:
    """The member's current key."""
    return session.scalars(
        select(MemberKey)
        .where(MemberKey.member_id == member.id, MemberKey.retired_at.is_(None))
        .order_by(MemberKey.id.desc())
    ).first()


def verify(
    session: Session,
    member: Member,
    message: bytes,
    signature: str,
    at: datetime | None = None,
) -> MemberKey:
    """Checks a base64 signature of `message` against the member's current key; with `at` (the
    signed time), also that the key was valid then — a key registered later does not vouch for
    a message dated before it, and a retired key vouches for nothing logged from now on."""
    key = active_key(session, member)
    if key is None:
        raise NoKey(member=member.slug)
    if at is not None and at < key.created_at:
        raise KeyNotValidAt(
            fingerprint=key.fingerprint[:16],
            registered=_iso(key.created_at),
            time=_iso(at),
        )
    if not verify_raw(key.public_key, message, signature):
        raise BadSignature()
    return key


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


@dataclass
class KeyHistory:
    """The members' key intervals, read from log entries in log order (no database).

    Feed every entry to `observe`; `valid(member, key, at)` then says whether `key` (base64) is
    the member's key at the current log position and was registered no later than `at`."""

    current: dict[int, tuple[str, datetime]] = field(default_factory=dict)

    def observe(self, body: dict[str, Any]) -> None:
        if body.get("kind") in ("key.registered", "key.rotated"):
            content = body["content"]
            self.current[int(content["member"])] = (
                str(content["public_key"]),
                parse_log_time(str(body["time"])),
            )

    def valid(self, member_id: int, public_key: str, at: datetime) -> bool:
        key = self.current.get(member_id)
        return key is not None and key[0] == public_key and key[1] <= at


def parse_log_time(text: str) -> datetime:
    """A log entry's time (ISO-8601 with Z) as an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def verify_raw(public_key: bytes, message: bytes, signature: str) -> bool:
    """True if `signature` (base64) signs `message` under `public_key` (raw 32 bytes)."""
    try:
        sig = base64.b64decode(signature, validate=True)
        Ed25519PublicKey.from_public_bytes(public_key).verify(sig, message)
    except (InvalidSignature, ValueError, binascii.Error, TypeError):
        return False
    return True


# The client side: a member's private key on its own machine.


def generate() -> Ed25519PrivateKey:
    """A new private key."""
    return Ed25519PrivateKey.generate()


def public_base64(private: Ed25519PrivateKey) -> str:
    """The public half in base64, as `register` takes it."""
    raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return base64.b64encode(raw).decode()


def sign(private: Ed25519PrivateKey, message: bytes) -> str:
    """A base64 Ed25519 signature of `message`."""
    return base64.b64encode(private.sign(message)).decode()


def save_private(private: Ed25519PrivateKey, path: Path) -> None:
    """Writes the private key as PEM, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)


def load_private(path: Path) -> Ed25519PrivateKey:
    """Reads a PEM private key written by `save_private`."""
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise MalformedKey()
    return key


def default_key_path(member_slug: str) -> Path:
    """Where `concord keys generate` keeps a member's private key on this machine."""
    base = Path(os.environ.get("CONCORD_KEY_DIR", Path.home() / ".concord" / "keys"))
    return base / f"{member_slug}.pem"
