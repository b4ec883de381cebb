"""What every domain's routes share: the settings, a database session, and a body limit.

`Db` is a session bound to the request. Routes commit explicitly after the domain call succeeds
(so the commit happens before the response is sent), and any exception rolls back.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from concord.config import Settings

# Path prefixes whose bodies may exceed `max_body_bytes` (uploads); domains add theirs at import.
UPLOAD_PREFIXES: list[str] = []


def allow_large_bodies(prefix: str) -> None:
    """Lets requests under `prefix` carry up to `max_upload_bytes`."""
    if prefix not in UPLOAD_PREFIXES:
        UPLOAD_PREFIXES.append(prefix)


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_sessions(request: Request) -> sessionmaker[Session]:
    sessions: sessionmaker[Session] = request.app.state.sessions
    return sessions


def get_db(request: Request) -> Iterator[Session]:
    session = get_sessions(request)()
    # Page rendering reuses this session: on SQLite a second one would wait for this one's lock.
    request.state.db = session
    try:
        yield session
    except Exception:
        session.rollback()
        raise
    finally:
        session.close()


# scope="function": the session closes when the handler returns, before the response is sent.
# On SQLite even a read holds the write lock (BEGIN IMMEDIATE) until the session ends, and
# sending a response needs the event loop — which another request may be blocking.
Db = Annotated[Session, Depends(get_db, scope="function")]
AppSettings = Annotated[Settings, Depends(get_settings)]
Sessions = Annotated[sessionmaker[Session], Depends(get_sessions)]


def state(request: Request, name: str) -> Any:
    """An object the app keeps for all requests (e.g. the hub key)."""
    return getattr(request.app.state, name)
