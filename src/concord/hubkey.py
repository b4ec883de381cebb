"""The hub's own Ed25519 key: it signs tree heads, bundle manifests and certificates."""

from __future__ import annotations

import base64
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from concord.config import Settings


def load_or_create(settings: Settings) -> Ed25519PrivateKey:
    """The hub's key, created (mode 0600) the first time it is needed."""
    path = settings.signing_key()
    if not path.exists():
        import os

        path.parent.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        # O_EXCL: two hub processes starting together must not write two different keys.
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(pem)
    return _load(path, path.stat().st_mtime_ns)


@lru_cache(maxsize=8)
def _load(path: Path, _mtime_ns: int) -> Ed25519PrivateKey:
    # Keyed on the file's mtime: every signed head asks for the key, but a replaced key file
    # (a key rotation by the operator) is still read afresh.
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise ValueError(f"{path} does not hold an Ed25519 private key")
    return loaded


def public_key_base64(key: Ed25519PrivateKey) -> str:
    """The hub's public key as base64 of the raw 32 bytes."""
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()
