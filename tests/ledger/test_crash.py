"""Killing a process with `kill -9` in the middle of appends leaves a log that verifies, with
no acknowledged entry lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from sqlalchemy import select

from concord.ledger import log, tree
from concord.ledger.committer import committer_for
from concord.ledger.tables import LogEntry, LogNode

APPENDER = """
import sys
from concord.db import make_engine, make_sessionmaker
from concord.ledger import log

sessions = make_sessionmaker(make_engine(sys.argv[1]))
n = 0
while True:
    with sessions() as db, db.begin():
        batch = log.append_many(db, [("crash.test", {"n": n + i}, None) for i in range(7)])
    # Acknowledge only after the commit returned: these entries must survive anything.
    print(batch[-1].index, flush=True)
    n += 7
"""


def test_kill_9_during_appends_loses_no_acknowledged_entry(database_url, sessions) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", APPENDER, database_url],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    acknowledged = -1
    deadline = time.monotonic() + 60
    assert process.stdout is not None
    while acknowledged < 2000 and time.monotonic() < deadline:
        line = process.stdout.readline()
        if line:
            acknowledged = int(line)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert acknowledged >= 2000, "the appender did not get going"

    with sessions() as db:
        size, root = log.current_root(db)
        leaves = list(db.scalars(select(LogEntry.leaf_hash).order_by(LogEntry.index)))
        bodies = list(db.scalars(select(LogEntry.body).order_by(LogEntry.index)))
        assert size == len(leaves) and size > acknowledged
        assert size % 7 == 0  # whole batches only: each commit is all or nothing
        assert [tree.leaf_hash(b) for b in bodies] == leaves
        assert root == tree.mth(leaves)
        nodes = db.scalars(select(LogNode)).all()
        assert len(nodes) == size - bin(size).count("1")
        for node in nodes[:: max(1, len(nodes) // 50)]:
            start, width = node.index << node.level, 1 << node.level
            assert node.hash == tree.mth(leaves[start : start + width])
    # The log still grows normally afterwards.
    with sessions() as db, db.begin():
        log.append(db, "after.crash", {})
    with sessions() as db:
        assert log.current_root(db)[0] == size + 1


GROUP_APPENDERS = """
import asyncio, sys, threading
from concord.db import make_engine, make_sessionmaker
from concord.ledger.committer import committer_for

group = committer_for(make_sessionmaker(make_engine(sys.argv[1])))
printing = threading.Lock()

def appender(thread):
    n = 0
    while True:
        entry = group.append("crash.group", {"thread": thread, "n": n})
        # Answered, so its group committed: this entry must survive anything from now on.
        with printing:
            print(entry.index, thread, n, flush=True)
        n += 1

async def task_appender(task):
    n = 0
    while True:
        entry = await group.append_async("crash.group", {"thread": task, "n": n})
        with printing:
            print(entry.index, task, n, flush=True)
        n += 1

async def tasks():  # as the API's async handlers would append
    await asyncio.gather(*(task_appender(task) for task in range(100, 356)))

for thread in range(32):
    threading.Thread(target=appender, args=(thread,), daemon=True).start()
asyncio.run(tasks())
"""


def test_kill_9_during_group_commits_loses_no_acknowledged_entry(database_url, sessions) -> None:
    """32 threads and 256 coroutines append one entry at a time through the group committer,
    printing each acknowledged index; `kill -9` lands wherever the committer is (mid-group,
    mid-commit)."""
    process = subprocess.Popen(
        [sys.executable, "-c", GROUP_APPENDERS, database_url],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    acknowledged: dict[int, dict[str, int]] = {}
    deadline = time.monotonic() + 60
    assert process.stdout is not None
    while len(acknowledged) < 3000 and time.monotonic() < deadline:
        line = process.stdout.readline()
        if line:
            index, thread, n = (int(v) for v in line.split())
            acknowledged[index] = {"thread": thread, "n": n}
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert len(acknowledged) >= 3000, "the appenders did not get going"
    assert {c["thread"] < 100 for c in acknowledged.values()} == {True, False}  # both kinds

    with sessions() as db:
        size, root = log.current_root(db)
        rows = list(db.execute(select(LogEntry.index, LogEntry.body).order_by(LogEntry.index)))
        assert [row[0] for row in rows] == list(range(size))  # gap-free
        assert max(acknowledged) < size
        for index, content in acknowledged.items():
            assert json.loads(rows[index][1])["content"] == content
        leaves = [tree.leaf_hash(row[1]) for row in rows]
        assert root == tree.mth(leaves)
        assert log.root_at(db, size) == root
        nodes = db.scalars(select(LogNode)).all()
        assert len(nodes) == size - bin(size).count("1")
    # The log still grows normally afterwards, through the committer too.
    assert committer_for(sessions).append("after.crash", {}).index == size
