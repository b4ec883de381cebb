"""What every domain's routes share: the settings, a database session, and a body limit.

`Db` is a session bound to the request. Routes commit explicitly after the domain call succeeds
(so the commit happens before the response is sent), and any exception rolls back. The session
closes when the handler returns; nothing may use it afterwards (error pages open their own).
Async routes do their database work in `step`s, so that no transaction waits on the event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from concord.config import Settings
from concord.db import read_session

T = TypeVar("T")

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
    # Page rendering inside the handler reuses this session: on SQLite a second one would wait
    # for this one's lock. It is lent only while the handler runs (see `handler_session`).
    request.state.db = session
    try:
        yield session
    except Exception:
        session.rollback()
        raise
    finally:
        # Withdrawn before closing: a closed session used again (by an error page rendered
        # after the handler failed) silently begins a new transaction that nothing ends, and
        # on SQLite that transaction holds the write lock for every other request.
        request.state.db = None
        session.close()


def handler_session(request: Request) -> Session | None:
    """The running handler's session, or None once the handler has returned or raised."""
    session: Session | None = getattr(request.state, "db", None)
    return session


@contextmanager
def page_session(request: Request) -> Iterator[Session]:
    """A session for page rendering: the handler's while it runs, else one of its own that is
    closed (its transaction ended) before the page is sent."""
    session = handler_session(request)
    if session is not None:
        yield session
        return
    with read_session(get_sessions(request)) as own:  # reads only: never the write lock
        yield own


# scope="function": the session closes when the handler returns, before the response is sent.
# On SQLite even a read holds the write lock (BEGIN IMMEDIATE) until the session ends, and
# sending a response needs the event loop — which another request may be blocking.
Db = Annotated[Session, Depends(get_db, scope="function")]
AppSettings = Annotated[Settings, Depends(get_settings)]
Sessions = Annotated[sessionmaker[Session], Depends(get_sessions)]


async def step(db: Session, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """One short piece of an async route's database work: `work(db, …)` runs in a worker
    thread and its transaction ends there (commit on success, rollback on error), so the
    route never awaits — a body, a bell, a disconnect — while holding a transaction."""
    return await run_in_threadpool(_ended, db, work, *args, **kwargs)


def _ended(db: Session, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    try:
        result = work(db, *args, **kwargs)
    except BaseException:
        db.rollback()
        raise
    db.commit()
    return result


def state(request: Request, name: str) -> Any:
    """An object the app keeps for all requests (e.g. the hub key)."""
    return getattr(request.app.state, name)
