"""Domain events: how a lower domain announces a fact to the domains above it.

Governance must not import federation, yet an adopted project has to become a job. Governance
`publish`es an event inside its own transaction; federation `subscribe`s a handler at import.
The event is a row, so an event published just before a crash is still delivered after the
restart: `deliver_pending` runs after each commit and at start-up, claims each row once (safe
with several hub processes on one database) and records the outcome.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, Text, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from concord.config import Settings
from concord.db import Base, UTCDateTime, utcnow

log = logging.getLogger(__name__)

Handler = Callable[[Session, dict[str, Any]], None]
_handlers: dict[str, list[Handler]] = {}
# The settings of the hub delivering events, for handlers that need the store or the key.
delivering_for: ContextVar[Settings | None] = ContextVar("delivering_for", default=None)


class Event(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


def subscribe(name: str) -> Callable[[Handler], Handler]:
    """Registers a handler for events called `name`; used as a decorator at import."""

    def register(handler: Handler) -> Handler:
        _handlers.setdefault(name, []).append(handler)
        return handler

    return register


def publish(session: Session, name: str, payload: dict[str, Any]) -> Event:
    """Records an event in the caller's transaction; it is delivered once that commits."""
    event = Event(name=name, payload=payload, created_at=utcnow())
    session.add(event)
    session.flush()
    return event


_threads: list[threading.Thread] = []


def deliver_in_background(factory: sessionmaker[Session], settings: Settings | None) -> None:
    """Delivers pending events on a thread of its own, after the current request."""
    thread = threading.Thread(target=deliver_pending, args=(factory, settings), daemon=True)
    _threads.append(thread)
    thread.start()
    _threads[:] = [t for t in _threads if t.is_alive()]


def wait_for_deliveries(timeout: float = 30.0) -> None:
    """Waits for background deliveries to finish (tests, and a clean shutdown)."""
    for thread in list(_threads):
        thread.join(timeout)
    _threads[:] = [t for t in _threads if t.is_alive()]


def deliver_pending(
    factory: sessionmaker[Session], settings: Settings | None = None, limit: int = 100
) -> int:
    """Runs the handlers of undelivered events, each event in its own transaction."""
    token = delivering_for.set(settings)
    try:
        return _deliver(factory, limit)
    finally:
        delivering_for.reset(token)


def _deliver(factory: sessionmaker[Session], limit: int) -> int:
    from concord.domains import domain_modules

    domain_modules("handlers")  # subscribers register at import
    delivered = 0
    with factory() as session:
        ids = session.scalars(
            select(Event.id).where(Event.delivered_at.is_(None)).order_by(Event.id).limit(limit)
        ).all()
    for event_id in ids:
        with factory() as session, session.begin():
            claimed = session.execute(
                update(Event)
                .where(Event.id == event_id, Event.delivered_at.is_(None))
                .values(delivered_at=utcnow())
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                continue  # another hub process took it
            event = session.get(Event, event_id)
            assert event is not None
            try:
                with session.begin_nested():
                    for handler in _handlers.get(event.name, []):
                        handler(session, event.payload)
            except Exception as exc:  # a failing handler must not block the queue
                log.exception("event %s (%s) failed", event.id, event.name)
                event.error = f"{type(exc).__name__}: {exc}"[:2000]
            delivered += 1
    return delivered
