"""Fixtures for the log: a filled log and an audit state folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from concord.ledger import log


def fill(sessions: sessionmaker[Session], n: int, kind: str = "test.act") -> None:
    """Appends n entries, in batches, committed."""
    done = 0
    while done < n:
        batch = min(200, n - done)
        with sessions() as db, db.begin():
            log.append_many(db, [(kind, {"n": done + i}, None) for i in range(batch)])
        done += batch


@pytest.fixture
def audit_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "audit"
    monkeypatch.setenv("CONCORD_AUDIT_DIR", str(folder))
    return folder
