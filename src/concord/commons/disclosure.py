"""What the public log says about a repository: everything while it is public, commitments
while it is private.

The log is read by anyone; a private repository is seen by its member's people and the
secretariat only. So every entry about a repository goes through `record`, which logs the
content as given while the repository is public and, while it is private, replaces it by
`public_view`: the repository as `private:` + HMAC-SHA256(salt, "<kind>/<owner>/<name>"), its
kind, a short list of facts that identify nothing (visibility, conformance verdict, request
status, number of files), and every other field as a commitment under the same salt. A new
field or entry kind is therefore hidden unless someone decides it may be shown.

The salt is 32 random bytes per repository, made when first needed and never served. Making
the repository public logs it (`reveal`), so anyone can recompute the earlier commitments and
link the history; the repository then gets a fresh salt if it becomes private again, since a
revealed salt would let anyone test guesses (a known dataset's SHA-256) against later ones.
See docs/commons.md, "Private repositories in the public log".
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from sqlalchemy.orm import Session

from concord.commons.tables import Repository
from concord.ledger.log import append, canonical_json
from concord.ledger.tables import LogEntry

PREFIX = "private:"
# Fields shown in clear for a private repository: none names it or its content.
CLEAR = frozenset({"kind", "private", "conformance", "status"})


def salt(repo: Repository) -> bytes:
    """The repository's secret salt, made on first use (the caller's transaction stores it)."""
    if not repo.log_salt:
        repo.log_salt = secrets.token_hex(32)
    return bytes.fromhex(repo.log_salt)


def commit_to(key: bytes, message: str) -> str:
    return PREFIX + hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def commitment(repo: Repository) -> str:
    """What the log names a private repository by."""
    return commit_to(salt(repo), f"{repo.kind}/{repo.owner}/{repo.name}")


def field_commitment(key: bytes, field: str, value: Any) -> str:
    """A field's value, committed: HMAC over `<field>=` and its canonical JSON."""
    return commit_to(key, f"{field}=" + canonical_json(value).decode())


def public_view(repo: Repository, content: dict[str, Any]) -> dict[str, Any]:
    """`content` as the public log may carry it about `repo` at this moment."""
    if not repo.private:
        return content
    key = salt(repo)
    view: dict[str, Any] = {"repository": commitment(repo), "kind": repo.kind}
    for field, value in content.items():
        if field in ("repository", "kind"):
            continue
        view[field] = value if field in CLEAR else field_commitment(key, field, value)
    if isinstance(content.get("files"), dict):
        view["file_count"] = len(content["files"])
    return view


def record(
    session: Session,
    repo: Repository,
    kind: str,
    content: dict[str, Any],
    *,
    member_id: int | None = None,
) -> LogEntry:
    """Appends an entry about `repo`: the one way the commons logs an act on a repository."""
    return append(session, kind, public_view(repo, content), member_id=member_id)


def reveal(repo: Repository) -> dict[str, str]:
    """For the entry making `repo` public: its salt and former commitment, if it had any, so
    that anyone can link what was logged while it was private; then forgets the salt."""
    if not repo.log_salt:
        return {}
    revealed = {"salt": repo.log_salt, "commitment": commitment(repo)}
    repo.log_salt = None
    return revealed
