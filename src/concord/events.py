"""Domain events: how a lower domain announces a fact to the domains above it.

Governance must not import federation, yet an adopted project has to become a job. Governance
`publish`es an event inside its own transaction; federation `subscribe`s a handler at import.
The event is a row, so an event published just before a crash is still delivered after the
restart: `deliver_pending` runs after each write and at start-up, claims each row once (safe
with several hub processes on one database) and records the outcome.

A handler that raises is not the end of its event: the row keeps the attempt count, the last
error and when to try again (backoff doubling from `BACKOFF_S`); after `MAX_ATTEMPTS` it is
`failed`, listed for the secretariat (`concord events`, the /events page), who can `retry` it.
Deliveries run on one long-lived `courier` thread per process, woken after each write; a write
never starts a thread of its own.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Integer, String, Text, or_, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from concord.config import Settings
from concord.db import Base, UTCDateTime, read_session, utcnow
from concord.errors import N_, Conflict, NotFound

log = logging.getLogger(__name__)

Handler = Callable[[Session, dict[str, Any]], None]
_handlers: dict[str, list[Handler]] = {}
# The settings of the hub delivering events, for handlers that need the store or the key.
delivering_for: ContextVar[Settings | None] = ContextVar("delivering_for", default=None)

MAX_ATTEMPTS = 6  # then the event is `failed` and waits for the secretariat
BACKOFF_S = 5.0  # before the second attempt; doubles after each failure
MAX_BACKOFF_S = 3600.0
STATES = ("pending", "retrying", "failed", "delivered")


class Event(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # The last handler failure (kept after a later success, as history).
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    @property
    def state(self) -> str:
        if self.delivered_at is not None:
            return "delivered"
        if self.failed_at is not None:
            return "failed"
        return "retrying" if self.attempts else "pending"


class EventNotFound(NotFound):
    code = "event.not_found"
    message = N_("There is no event {event}.")


class EventDelivered(Conflict):
    code = "event.delivered"
    message = N_("Event {event} has been delivered already; there is nothing to retry.")


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


def backoff(attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th failed attempt."""
    return timedelta(seconds=min(MAX_BACKOFF_S, BACKOFF_S * 2 ** max(0, attempts - 1)))


def undelivered(session: Session, *, failed_only: bool = False, limit: int = 200) -> list[Event]:
    """Events not (yet) delivered, oldest first: failed ones, and those waiting or retrying."""
    query = select(Event).where(Event.delivered_at.is_(None))
    if failed_only:
        query = query.where(Event.failed_at.is_not(None))
    return list(session.scalars(query.order_by(Event.id).limit(limit)).all())


def get_event(session: Session, event_id: int) -> Event:
    event = session.get(Event, event_id)
    if event is None:
        raise EventNotFound(event=event_id)
    return event


def retry(session: Session, event_id: int) -> Event:
    """Makes an undelivered event due now, with a fresh set of attempts (the secretariat's)."""
    event = get_event(session, event_id)
    if event.delivered_at is not None:
        raise EventDelivered(event=event_id)
    event.failed_at = None
    event.next_attempt_at = None
    event.attempts = 0
    session.flush()
    return event


def deliver_pending(
    factory: sessionmaker[Session],
    settings: Settings | None = None,
    limit: int = 100,
    *,
    now: datetime | None = None,
) -> int:
    """Runs the handlers of due events, each event in its own transaction; returns how many
    were attempted. `now` (for tests) decides which retries are due."""
    token = delivering_for.set(settings)
    try:
        return _deliver(factory, limit, now or utcnow())
    finally:
        delivering_for.reset(token)


def _due(now: datetime) -> ColumnElement[bool]:
    return (
        Event.delivered_at.is_(None)
        & Event.failed_at.is_(None)
        & or_(Event.next_attempt_at.is_(None), Event.next_attempt_at <= now)
    )


def _deliver(factory: sessionmaker[Session], limit: int, now: datetime) -> int:
    from concord.domains import domain_modules

    domain_modules("handlers")  # subscribers register at import
    attempted = 0
    with read_session(factory) as session:  # looking takes no write lock
        ids = list(
            session.scalars(select(Event.id).where(_due(now)).order_by(Event.id).limit(limit))
        )
    for event_id in ids:
        with factory() as session, session.begin():
            # The claim commits with the outcome: another hub process waits for this row
            # and then finds it no longer due.
            claimed = session.execute(
                update(Event)
                .where(Event.id == event_id, _due(now))
                .values(delivered_at=utcnow(), attempts=Event.attempts + 1)
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
                _failed(event, exc, now)
            else:
                event.next_attempt_at = None
            attempted += 1
    return attempted


def _failed(event: Event, exc: Exception, now: datetime) -> None:
    event.delivered_at = None
    event.error = f"{type(exc).__name__}: {exc}"[:2000]
    if event.attempts >= MAX_ATTEMPTS:
        event.failed_at = now
        event.next_attempt_at = None
        log.exception(
            "event %s (%s) failed for good after %s attempts", event.id, event.name, event.attempts
        )
    else:
        event.next_attempt_at = now + backoff(event.attempts)
        log.warning(
            "event %s (%s) failed (attempt %s), retrying at %s: %s",
            event.id,
            event.name,
            event.attempts,
            event.next_attempt_at,
            event.error,
        )


def seconds_to_next(factory: sessionmaker[Session]) -> float | None:
    """Seconds until the next undelivered event is due (0 if one is), None if none waits."""
    waiting = Event.delivered_at.is_(None) & Event.failed_at.is_(None)
    with read_session(factory) as session:
        if session.scalar(select(Event.id).where(waiting, Event.next_attempt_at.is_(None))):
            return 0.0
        soonest = session.scalar(
            select(Event.next_attempt_at)
            .where(waiting, Event.next_attempt_at.is_not(None))
            .order_by(Event.next_attempt_at)
            .limit(1)
        )
    if soonest is None:
        return None
    return max(0.0, (soonest - utcnow()).total_seconds())


Hub = tuple[sessionmaker[Session], Settings | None]


def _database(factory: sessionmaker[Session]) -> str:
    bind = factory.kw.get("bind")
    url = getattr(bind, "url", None)
    return url.render_as_string(hide_password=True) if url is not None else str(id(factory))


class Courier:
    """One long-lived thread that delivers events for every hub of this process.

    `wake` (after a write) asks for a delivery now; retries are slept on until they are due.
    The thread holds no session between deliveries and starts on first use (again in a
    forked child).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._now: dict[str, Hub] = {}  # hubs to deliver for at once
        self._later: dict[str, tuple[Hub, float]] = {}  # hubs with a retry due at a time
        self._busy = False
        self._thread: threading.Thread | None = None
        self._pid = 0

    def wake(self, factory: sessionmaker[Session], settings: Settings | None) -> None:
        key = _database(factory)
        with self._cond:
            # One queue per database: a newer hub object on it (a restart, a test) replaces
            # the older one, whose settings may name a data folder that is gone.
            self._now[key] = (factory, settings)
            self._later.pop(key, None)
            self._start()
            self._cond.notify_all()

    def forget(self, factory: sessionmaker[Session]) -> None:
        """Drops the retries scheduled for this hub's database (a hub shutting down)."""
        with self._cond:
            self._later.pop(_database(factory), None)

    def wait_idle(self, timeout: float) -> bool:
        """True once nothing is due now and no delivery is running (retries may wait)."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._now and not self._busy, timeout)

    def _start(self) -> None:
        if self._thread is not None and self._thread.is_alive() and self._pid == os.getpid():
            return
        self._pid = os.getpid()
        self._thread = threading.Thread(target=self._run, name="concord-events", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    pause = self._move_due()
                    if self._now:
                        break
                    self._busy = False
                    self._cond.notify_all()
                    self._cond.wait(pause)
                work = dict(self._now)
                self._now.clear()
                self._busy = True
            for key, hub in work.items():
                after = self._deliver(hub)
                with self._cond:
                    if after is not None and key not in self._now:
                        self._later[key] = (hub, time.monotonic() + after)

    def _move_due(self) -> float | None:
        """Moves retries that are due to `_now`; returns seconds until the next one."""
        clock = time.monotonic()
        for key, (hub, at) in list(self._later.items()):
            if at <= clock:
                self._now[key] = hub
                del self._later[key]
        if not self._later:
            return None
        return max(0.0, min(at for _hub, at in self._later.values()) - clock)

    @staticmethod
    def _deliver(hub: Hub) -> float | None:
        factory, settings = hub
        try:
            deliver_pending(factory, settings)
            return seconds_to_next(factory)
        except Exception:  # e.g. the database restarting: the next write wakes us again
            log.exception("delivering events failed")
            return None


courier = Courier()


def deliver_in_background(factory: sessionmaker[Session], settings: Settings | None) -> None:
    """Wakes the courier to deliver pending events, beside the current request."""
    courier.wake(factory, settings)


def wait_for_deliveries(timeout: float = 30.0) -> None:
    """Waits until no delivery is due or running (tests, and a clean shutdown)."""
    courier.wait_idle(timeout)
