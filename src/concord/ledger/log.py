"""Appending to the log, inside the caller's transaction.

Other domains call `append(session, kind, content, member_id=…)` in the same transaction as
the act it records, so the act and its entry commit together or not at all.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from concord.db import utcnow
from concord.ledger.tables import LogEntry, LogState


def canonical_json(value: Any) -> bytes:
    """Sorted keys, UTF-8, no whitespace: the same bytes for the same value everywhere."""
    return json.dumps(
        value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    ).encode("utf-8")


def leaf_hash(entry: bytes) -> bytes:
    """RFC 9162 §2.1.1: SHA-256(0x00 ‖ entry)."""
    return hashlib.sha256(b"\x00" + entry).digest()


def entry_body(
    kind: str, content: dict[str, Any], member_id: int | None, at: datetime
) -> dict[str, Any]:
    """The logged document."""
    return {
        "kind": kind,
        "time": at.isoformat().replace("+00:00", "Z"),
        "member": member_id,
        "content": content,
    }


def append(
    session: Session, kind: str, content: dict[str, Any], member_id: int | None = None
) -> LogEntry:
    """Appends one entry in the caller's transaction and returns it (with its index)."""
    state = session.scalars(select(LogState).where(LogState.id == 1).with_for_update()).first()
    if state is None:
        state = LogState(id=1, size=0)
        session.add(state)
        session.flush()
    at = utcnow()
    body = canonical_json(entry_body(kind, content, member_id, at))
    entry = LogEntry(
        index=state.size,
        kind=kind,
        member_id=member_id,
        created_at=at,
        body=body,
        leaf_hash=leaf_hash(body),
    )
    state.size += 1
    session.add(entry)
    session.flush()
    return entry


def size(session: Session) -> int:
    """Number of entries committed."""
    state = session.get(LogState, 1)
    return state.size if state else 0
