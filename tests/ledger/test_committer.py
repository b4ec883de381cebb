"""Group commit: concurrent appends share one transaction each group, in a gap-free order, and
each caller is answered only once its group committed."""

from __future__ import annotations

import asyncio
import gc
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from concord.db import make_engine, make_sessionmaker
from concord.errors import NulCharacter
from concord.ledger import committer, log, tree
from concord.ledger.tables import LogEntry


def _stored(sessions: sessionmaker[Session]) -> list[LogEntry]:
    with sessions() as db:
        return list(db.scalars(select(LogEntry).order_by(LogEntry.index)))


def _check_log(sessions: sessionmaker[Session]) -> list[LogEntry]:
    """The log is gap-free, every body is its canonical document, and the stored tree is the
    tree of the entries."""
    rows = _stored(sessions)
    assert [r.index for r in rows] == list(range(len(rows)))
    for row in rows:
        document = json.loads(row.body)
        assert row.body == log.canonical_json(document)
        assert document["kind"] == row.kind and document["member"] == row.member_id
        assert row.leaf_hash == tree.leaf_hash(row.body)
    leaves = [r.leaf_hash for r in rows]
    with sessions() as db:
        size, root = log.current_root(db)
        assert (size, root) == (len(rows), tree.mth(leaves))
        for i in range(0, size, max(1, size // 40)):
            assert log.inclusion_proof(db, i, size) == tree.path(i, leaves)
    return rows


def test_concurrent_threads_share_transactions_in_a_gap_free_order(
    sessions: sessionmaker[Session],
) -> None:
    commits: list[int] = []
    event.listen(sessions.kw["bind"], "commit", lambda _conn: commits.append(1))
    group = committer.committer_for(sessions)
    answers: dict[int, list[log.Appended]] = {t: [] for t in range(32)}

    def appender(thread: int) -> None:
        for n in range(20):
            answers[thread].append(group.append("test.group", {"t": thread, "n": n}, thread))

    threads = [threading.Thread(target=appender, args=(t,)) for t in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    rows = _check_log(sessions)
    assert len(rows) == 640
    assert 0 < len(commits) < 640 / 2  # groups of several entries, not one commit each
    for thread, appended in answers.items():
        indices = [a.index for a in appended]
        assert indices == sorted(indices)  # a thread's entries in the order it appended them
        for n, a in enumerate(appended):
            assert json.loads(rows[a.index].body)["content"] == {"t": thread, "n": n}
            assert (rows[a.index].body, rows[a.index].leaf_hash) == (a.body, a.leaf_hash)


def test_async_appenders_are_answered_with_their_own_entries(
    sessions: sessionmaker[Session],
) -> None:
    group = committer.committer_for(sessions)

    async def appender(task: int) -> list[int]:
        return [
            (await group.append_async("test.async", {"task": task, "n": n})).index for n in range(5)
        ]

    async def everyone() -> list[list[int]]:
        return await asyncio.gather(*(appender(task) for task in range(200)))

    groups_before = group.groups
    # A loop of its own in a thread of its own: in a worker where a session-scoped browser
    # (Playwright's sync API) already runs an event loop, asyncio.run() here would refuse.
    with ThreadPoolExecutor(1) as runner:
        answered = runner.submit(asyncio.run, everyone()).result()

    rows = _check_log(sessions)
    assert len(rows) == 1000
    assert group.groups - groups_before < 1000 / 2
    for task, indices in enumerate(answered):
        contents = [json.loads(rows[i].body)["content"] for i in indices]
        assert contents == [{"task": task, "n": n} for n in range(5)]


def test_a_failed_group_fails_each_of_its_callers_and_leaves_no_trace(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    group = committer.committer_for(sessions)
    group.append("test.before", {})
    real = log.append_prepared
    entered = threading.Event()
    release = threading.Event()
    calls: list[int] = []

    def fail_once(session: Session, items: list[log.Prepared]) -> list[log.Appended]:
        calls.append(len(items))
        if len(calls) == 1:
            entered.set()
            release.wait(10)
            real(session, items)  # written, then the commit must not happen
            raise RuntimeError("disk on fire")
        return real(session, items)

    monkeypatch.setattr(committer.log, "append_prepared", fail_once)
    outcomes: list[object] = []

    def appender(n: int) -> None:
        try:
            outcomes.append(group.append("test.doomed", {"n": n}).index)
        except RuntimeError as error:
            outcomes.append(str(error))

    first = threading.Thread(target=appender, args=(0,))
    first.start()
    assert entered.wait(10)
    release.set()
    first.join()
    after = group.append("test.after", {"n": 1})

    assert outcomes == ["disk on fire"]
    assert after.index == 1
    rows = _check_log(sessions)
    assert [r.kind for r in rows] == ["test.before", "test.after"]


def test_a_kind_that_cannot_be_stored_fails_its_caller_only(
    sessions: sessionmaker[Session],
) -> None:
    group = committer.committer_for(sessions)
    with pytest.raises(NulCharacter):
        group.append("test.\x00", {})
    with pytest.raises(ValueError):
        group.append("k" * 65, {})
    with pytest.raises(ValueError):  # not JSON: NaN is refused before queueing
        group.append("test.nan", {"x": float("nan")})
    assert group.append("test.fine", {"x": 1}).index == 0
    assert [r.kind for r in _check_log(sessions)] == ["test.fine"]


def test_a_committer_keeps_its_database_while_it_is_held(database_url: str) -> None:
    """The crash test's appenders once all failed in CI: their only sessionmaker was a
    temporary, and when the garbage collector took its engine, the committer (which held the
    engine weakly) refused every append. Whoever holds a committer may append."""
    # Prepare: nothing but the committer refers to the engine
    group = committer.committer_for(make_sessionmaker(make_engine(database_url)))
    gc.collect()
    # Execute
    entry = group.append("test.held", {"n": 1})
    # Assert
    assert group.append("test.held", {"n": 2}).index == entry.index + 1
