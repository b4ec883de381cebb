"""Group commit of log appends: entries queued by many callers, written by one transaction.

A durable commit costs one flush of the database's write-ahead log (SQLite with
`synchronous=FULL`, PostgreSQL with `synchronous_commit=on`): some milliseconds on a real disk,
whatever the transaction holds. Appenders that commit one entry each therefore queue behind
each other's flushes. Here callers hand their entry to the database's `Committer` instead: one
thread per database and process takes everything queued, appends it in queue order in ONE
transaction (`log.append_prepared`), commits, and only then answers every caller of that
group. While it flushes, new entries queue for the next group, so the group grows with the
load and the flushes per entry fall.

What a caller is told is durable: the answer is given after `commit()` returned, and both
databases return from a commit only after its log is flushed; a `kill -9` of the process at
any moment loses at most entries nobody was told about (tests/ledger/test_crash.py).

The order is the queue's: a caller's entry gets an index after every entry queued before it,
and the group is gap-free because the whole group commits or none of it does. If the
transaction fails, every caller of the group gets the error and nothing of the group is in
the log; the next group starts again from the stored state.

Entries appended this way are not atomic with a domain act: acts still append in their own
transaction with `log.append` (the act and its entry commit together). The committer is for
appends that are the act themselves (records, imports, the API's logging of what it did).
Callers serialise their content to canonical JSON before queueing, so a value that cannot be
logged fails in its caller and never in the group.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections import deque
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from concord.ledger import log

MAX_GROUP = 10_000  # entries per transaction at most (bounds memory and a group's latency)
IDLE_S = 2.0  # the thread ends after this long without work, and starts again on demand
# Before a group starts, the committer waits a moment for the callers it just answered to
# append again (as PostgreSQL's commit_delay does): at most this fraction of the last commit's
# time, and never more than MAX_DELAY_S.
DELAY_SHARE = 0.25
MAX_DELAY_S = 0.002


class Group:
    """Entries committed together, and the answer to each of their callers."""

    def __init__(self) -> None:
        self.items: list[log.Prepared] = []
        self.done = False
        self.results: list[log.Appended] = []
        self.error: BaseException | None = None
        self._threads: list[threading.Lock] = []  # one held lock per waiting thread
        self._waiting: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], int]]] = {}
        self._lock = threading.Lock()

    def wait(self, position: int) -> log.Appended:
        """Blocks until the group is committed (or failed). Each thread waits on a lock of its
        own, released by `finish`: a shared Event would wake them all onto one lock."""
        mine = threading.Lock()
        mine.acquire()
        with self._lock:
            if not self.done:
                self._threads.append(mine)
            else:
                mine.release()
        mine.acquire()
        return self._result(position)

    def _result(self, position: int) -> log.Appended:
        if self.error is not None:
            raise self.error
        return self.results[position]

    def on_done(self, future: asyncio.Future[Any], position: int) -> None:
        """Resolves `future` (of the running loop) once the group is committed."""
        with self._lock:
            if not self.done:
                self._waiting.setdefault(future.get_loop(), []).append((future, position))
                return
        self._resolve([(future, position)])

    def finish(self, results: list[log.Appended], error: BaseException | None) -> None:
        self.results, self.error = results, error
        with self._lock:
            self.done = True
            threads, self._threads = self._threads, []
            waiting, self._waiting = self._waiting, {}
        for lock in threads:
            lock.release()
        for loop, futures in waiting.items():  # one wake-up per event loop, not per caller
            if not loop.is_closed():
                loop.call_soon_threadsafe(self._resolve, futures)

    def _resolve(self, futures: list[tuple[asyncio.Future[Any], int]]) -> None:
        for future, position in futures:
            if future.done():  # the caller was cancelled; its entry is logged all the same
                continue
            try:
                future.set_result(self._result(position))
            except BaseException as error:  # the group's failure is each caller's
                future.set_exception(error)


class Committer:
    """The group committer of one database in this process (get it with `committer_for`)."""

    def __init__(self, engine: Engine) -> None:
        # Strongly: whoever holds the committer may append, so its engine must live as long as it
        # does (a weak reference failed every append once the caller's only sessionmaker was
        # collected). The registry holds committers weakly, so neither outlives its users.
        self._engine = engine
        self.groups = 0  # transactions committed (for tests and the benchmark)
        self.entries = 0
        self._lock = threading.Condition(threading.Lock())  # not reentrant: cheaper
        self._queue: deque[Group] = deque()  # full groups waiting, oldest first
        self._open = Group()
        self._thread: threading.Thread | None = None
        self._answered = 0  # callers of the last group: how many are likely to come back
        self._last_commit_s = 0.0

    def submit(
        self, kind: str, content: dict[str, Any], member_id: int | None = None
    ) -> tuple[Group, int]:
        """Queues one entry; returns its group and its place in it (see `Group.wait`)."""
        log.check_kind(kind)
        item = (kind, log.canonical_json(content), member_id)
        with self._lock:
            group = self._open
            group.items.append(item)
            position = len(group.items) - 1
            if len(group.items) >= MAX_GROUP:
                self._queue.append(group)
                self._open = Group()
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="concord-log-committer", daemon=True
                )
                self._thread.start()
            elif position == 0 or position + 1 == self._answered:
                self._lock.notify()
        return group, position

    def append(
        self, kind: str, content: dict[str, Any], member_id: int | None = None
    ) -> log.Appended:
        """Appends one entry and returns once it is durable, with its index."""
        group, position = self.submit(kind, content, member_id)
        return group.wait(position)

    async def append_async(
        self, kind: str, content: dict[str, Any], member_id: int | None = None
    ) -> log.Appended:
        """`append` for async code: the event loop runs on while the group commits."""
        group, position = self.submit(kind, content, member_id)
        future: asyncio.Future[log.Appended] = asyncio.get_running_loop().create_future()
        group.on_done(future, position)
        return await future

    def _next(self) -> Group | None:
        """The next group to commit, waiting for one; None when idle for IDLE_S."""
        with self._lock:
            while not self._queue and not self._open.items:
                if not self._lock.wait(IDLE_S) and not self._queue and not self._open.items:
                    self._thread = None
                    return None
            if self._queue:
                return self._queue.popleft()
            # Closed-loop callers (each appends again once answered) would otherwise split into
            # two half groups that alternate, each waiting for the other's flush.
            delay = min(MAX_DELAY_S, DELAY_SHARE * self._last_commit_s)
            deadline = time.monotonic() + delay
            while len(self._open.items) < self._answered and not self._queue:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._lock.wait(left)
            if self._queue:
                return self._queue.popleft()
            group, self._open = self._open, Group()
            return group

    def _run(self) -> None:
        while (group := self._next()) is not None:
            started = time.monotonic()
            try:
                results = self._commit(group.items)
            except BaseException as error:  # the group failed as a whole; its callers hear why
                group.finish([], error)
                continue
            self.groups += 1
            self.entries += len(results)
            self._last_commit_s = time.monotonic() - started
            self._answered = len(results)
            group.finish(results, None)

    def _commit(self, items: list[log.Prepared]) -> list[log.Appended]:
        """Appends `items` in one transaction; returns once it is committed (durable)."""
        engine = self._engine
        with Session(engine, expire_on_commit=False) as session, session.begin():
            return log.append_prepared(session, items)


# By the engine's id: a live committer holds its engine, so the id cannot be reused while the
# entry exists, and the entry goes when the last holder of the committer (callers, its thread)
# lets it go.
_committers: weakref.WeakValueDictionary[int, Committer] = weakref.WeakValueDictionary()
_committers_lock = threading.Lock()


def committer_for(sessions: sessionmaker[Session] | Engine) -> Committer:
    """The committer of the database behind `sessions` (made on first use, one per engine)."""
    engine = sessions if isinstance(sessions, Engine) else sessions.kw["bind"]
    with _committers_lock:
        committer = _committers.get(id(engine))
        if committer is None:
            committer = _committers[id(engine)] = Committer(engine)
        return committer
