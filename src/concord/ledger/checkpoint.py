"""Checkpoints: the signed tree head as a C2SP signed note (c2sp.org/tlog-checkpoint).

The note text is three lines — the log's origin, the tree size, the base64 root — and one
signature line, "— <origin> base64(key ID ‖ Ed25519 signature)", where the key ID is the first
four bytes of SHA-256(origin ‖ 0x0A ‖ 0x01 ‖ public key) (c2sp.org/signed-note). It is signed
with the hub's key, the one that signs the JSON heads. Ed25519 is deterministic, so the
checkpoint of a given size is the same bytes every time it is served: nothing is stored.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from urllib.parse import urlparse

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ED25519 = b"\x01"
DASH = "\u2014"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes

    @property
    def text(self) -> str:
        """The signed note text, final newline included."""
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"


def origin_of(public_url: str) -> str:
    """The log's origin: its URL prefix without the scheme or trailing slash (the spec's
    recommendation), e.g. hub.example.org/log."""
    parsed = urlparse(public_url)
    return f"{parsed.netloc}{parsed.path.rstrip('/')}/log"


def key_id(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + ED25519 + public_key).digest()[:4]


def _raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def sign_note(text: str, name: str, key: Ed25519PrivateKey) -> str:
    """`text` (ending in a newline) as a signed note with one Ed25519 signature by `key`
    under `name`."""
    signature = key_id(name, _raw(key)) + key.sign(text.encode())
    return f"{text}\n{DASH} {name} {base64.b64encode(signature).decode()}\n"


def sign(checkpoint: Checkpoint, key: Ed25519PrivateKey) -> str:
    """The checkpoint as a signed note, signed by `key` under the name of its origin."""
    return sign_note(checkpoint.text, checkpoint.origin, key)


def open_note(note: str, public_key: bytes) -> Checkpoint | None:
    """The checkpoint in `note` if it carries a valid signature by `public_key` under its own
    origin's name; None otherwise (malformed, unsigned by that key, or a bad signature).
    Signatures by other keys are ignored, as the signed-note spec requires."""
    text, separator, signatures = note.rpartition("\n\n")
    if not separator or any(c < " " and c != "\n" for c in note):
        return None
    text += "\n"
    lines = text.split("\n")[:-1]
    if len(lines) < 3 or not lines[1].isdigit() or (lines[1] != "0" and lines[1][0] == "0"):
        return None
    try:
        root = base64.b64decode(lines[2], validate=True)
    except ValueError:
        return None
    origin = lines[0]
    wanted = key_id(origin, public_key)
    verifier = Ed25519PublicKey.from_public_bytes(public_key)
    verified = False
    for line in signatures.splitlines():
        dash, _space, rest = line.partition(" ")
        name, _space, encoded = rest.partition(" ")
        if dash != DASH or name != origin:
            continue
        try:
            raw = base64.b64decode(encoded, validate=True)
        except ValueError:
            return None
        if raw[:4] != wanted:
            continue  # another key of the same name: ignored
        try:
            verifier.verify(raw[4:], text.encode())
        except Exception:  # a known key's signature that fails: reject the whole note
            return None
        verified = True
    if not verified or len(root) != 32:
        return None
    return Checkpoint(origin, int(lines[1]), root)
