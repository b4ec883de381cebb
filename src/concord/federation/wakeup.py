"""How the hub wakes nodes that wait for work, and moves jobs on without being asked.

A node long-polls `GET /api/federation/work`: the request waits on the `bell` — without a
database transaction and without a worker thread — until a round opens or closes in this
process, and looks at the database again at least every `RECHECK_S` seconds for what other hub
processes did. The `ticker` advances running jobs at each round's deadline, and at start-up
(after a crash, rounds whose deadline passed meanwhile are closed or given another attempt).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import datetime

from fastapi import FastAPI
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from concord.config import Settings
from concord.db import utcnow
from concord.federation.jobs import advance_all

log = logging.getLogger("concord.federation")

RECHECK_S = 2.0  # longest a waiting node goes without the database being looked at
TICK_S = 2.0  # longest the ticker sleeps when no deadline is nearer


class Bell:
    """Rung (from any thread) when rounds change; waiters (on any event loop) wake at once."""

    def __init__(self) -> None:
        self.rings = 0
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = set()

    def ring(self) -> None:
        with self._lock:
            self.rings += 1
            waiters = list(self._waiters)
        for loop, future in waiters:
            loop.call_soon_threadsafe(_settle, future)

    async def wait(self, since: int, timeout: float) -> None:
        """Returns when rung after `since` (a value of `rings`), or after `timeout` seconds."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        entry = (loop, future)
        with self._lock:
            if self.rings != since:
                return
            self._waiters.add(entry)
        try:
            with suppress(TimeoutError):
                await asyncio.wait_for(future, timeout)
        finally:
            with self._lock:
                self._waiters.discard(entry)


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


bell = Bell()


def tick(sessions: sessionmaker[Session], settings: Settings) -> datetime | None:
    """Advances every running job once; returns the next open round's deadline."""
    with sessions() as session:
        moved, deadline = advance_all(session, settings)
    if moved:
        bell.ring()
    return deadline


async def run_ticker(sessions: sessionmaker[Session], settings: Settings) -> None:
    while True:
        try:
            deadline = await run_in_threadpool(tick, sessions, settings)
        except SQLAlchemyError:  # e.g. the database restarting; try again at the next tick
            log.exception("advancing jobs failed")
            deadline = None
        pause = TICK_S
        if deadline is not None:
            pause = min(TICK_S, max(0.05, (deadline - utcnow()).total_seconds() + 0.05))
        await asyncio.sleep(pause)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Runs the ticker while the hub serves."""
    task = asyncio.create_task(run_ticker(app.state.sessions, app.state.settings))
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
