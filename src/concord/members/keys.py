"""Members' Ed25519 keys.

A member signs its ballots and updates with a private key that stays on its own machine; the
hub records only the public half. Registering a new key retires the old one (rotation); both
acts are logged, so anyone can tell which key was valid when.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from pathlib import Path

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
    append(
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
    return key


def active_key(session: Session, member: Member) -> MemberKey | None:
    """The member's current key."""
    return session.scalars(
        select(MemberKey)
        .where(MemberKey.member_id == member.id, MemberKey.retired_at.is_(None))
        .order_by(MemberKey.id.desc())
    ).first()


def verify(session: Session, member: Member, message: bytes, signature: str) -> MemberKey:
    """Checks a base64 signature of `message` against the member's current key."""
    key = active_key(session, member)
    if key is None:
        raise NoKey(member=member.slug)
    if not verify_raw(key.public_key, message, signature):
        raise BadSignature()
    return key


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
