"""The transparency log: durable appends and verified proofs, beside pymerkle on the same entries.

    python benchmarks/ledger.py            # 100,000 entries, 10,000 inclusion, 1,000 consistency
    python benchmarks/ledger.py --quick    # 10,000 / 1,000 / 100

Group commit: APPENDERS threads (and, as the API's async handlers would, ASYNC_APPENDERS
coroutines on one event loop) each append one entry at a time through `ledger.committer` and
wait until it is durable; the rate counts acknowledged entries only, and the number of entries
per commit is reported beside it. The same threads committing one entry per transaction
(`log.append`, what each appender paid before) run as the baseline.

Ours runs on SQLite (WAL, synchronous=FULL) and on PostgreSQL (CONCORD_DATABASE_URL, or the
local server at 127.0.0.1:5432 if one answers), committing every 1,000 entries: each commit is
durable before the next batch starts. Proofs are produced from the stored nodes and each one is
verified with the RFC 9162 algorithms: in batches (as `concord audit --full` asks the JSON API),
and one at a time (leaf, proof and verification per call, the hub's upper levels cached).
Tiles (c2sp.org/tlog-tiles) are read as the hub serves them, and single proofs are computed from
them and verified as a monitor does. The peer, pymerkle 7 (its SQLite and in-memory trees),
runs in its own virtual environment (benchmarks/.venv-peer, created on first use) on the same
entry bytes. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from concord.db import make_engine, make_sessionmaker, upgrade
from concord.ledger import committer, log, tiles, tree

HERE = Path(__file__).parent
PEER_VENV = HERE / ".venv-peer"
BATCH = 1000
APPENDERS = 64
ASYNC_APPENDERS = 2048
PG_DEFAULT = "postgresql+psycopg://postgres:postgres@127.0.0.1:5432/postgres"

PEER = r"""
import json, random, statistics, sys, time, os, tempfile
from pymerkle import InmemoryTree, SqliteTree, verify_inclusion, verify_consistency
n, n_inc, n_cons = (int(x) for x in sys.argv[1:4])
entries = [json.dumps({"kind": "bench", "n": i}).encode() for i in range(n)]
out = {}
with tempfile.TemporaryDirectory() as folder:
    t0 = time.perf_counter()
    sqlite_tree = SqliteTree(os.path.join(folder, "peer.db"), algorithm="sha256")
    sqlite_tree.append_entries(entries, chunksize=1000)
    out["sqlite_appends_per_s"] = n / (time.perf_counter() - t0)
mem = InmemoryTree(algorithm="sha256")
t0 = time.perf_counter()
for e in entries:
    mem.append_entry(e)
out["memory_appends_per_s"] = n / (time.perf_counter() - t0)
rng = random.Random(7)
root = mem.get_root(n)
rates = []
for _ in range(3):
    picks = [rng.randrange(1, n + 1) for _ in range(n_inc)]
    t0 = time.perf_counter()
    for i in picks:
        proof = mem.prove_inclusion(i, n)
        verify_inclusion(mem.get_leaf(i), root, proof)
    rates.append(n_inc / (time.perf_counter() - t0))
out["inclusion_proofs_per_s"] = statistics.median(rates)
rates = []
for _ in range(3):
    pairs = [sorted((rng.randrange(1, n + 1), rng.randrange(1, n + 1))) for _ in range(n_cons)]
    t0 = time.perf_counter()
    for a, b in pairs:
        proof = mem.prove_consistency(a, b)
        verify_consistency(mem.get_root(a), mem.get_root(b), proof)
    rates.append(n_cons / (time.perf_counter() - t0))
out["consistency_proofs_per_s"] = statistics.median(rates)
print(json.dumps(out))
"""


def peer(n: int, n_inc: int, n_cons: int) -> dict[str, float] | str:
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        try:
            subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
            subprocess.run(
                [str(python), "-m", "pip", "install", "-q", "pymerkle==7.0.0"], check=True
            )
        except subprocess.CalledProcessError as exc:
            return f"pymerkle could not be installed: {exc}"
    result = subprocess.run(
        [str(python), "-W", "ignore", "-c", PEER, str(n), str(n_inc), str(n_cons)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        return f"pymerkle failed: {result.stderr[-400:]}"
    return json.loads(result.stdout.strip().splitlines()[-1])


def ours(url: str, n: int, n_inc: int, n_cons: int) -> dict[str, float]:
    engine = make_engine(url)
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    t0 = time.perf_counter()
    for start in range(0, n, BATCH):
        items = [("bench", {"n": i}, None) for i in range(start, min(n, start + BATCH))]
        with sessions() as db, db.begin():
            log.append_many(db, items)
    appends = n / (time.perf_counter() - t0)
    rng = random.Random(7)
    with sessions() as db:
        size, root = log.current_root(db)
        assert size == n
        inclusion = []
        for _ in range(3):
            picks = [rng.randrange(n) for _ in range(n_inc)]
            t0 = time.perf_counter()
            for chunk in range(0, n_inc, BATCH):
                batch = picks[chunk : chunk + BATCH]
                proofs = log.inclusion_proofs(db, batch, n)
                leaves = log.Nodes(db)
                leaves.fetch((0, i) for i in batch)
                for i, path in zip(batch, proofs, strict=True):
                    assert tree.verify_inclusion(leaves(0, i), i, n, path, root)
            inclusion.append(n_inc / (time.perf_counter() - t0))
        single = []
        picks = [rng.randrange(n) for _ in range(min(n_inc, 2000))]
        for _ in range(3):  # leaf and proof by one statement, as the API serves them
            t0 = time.perf_counter()
            for i in picks:
                leaf, path = log.proven_leaf(db, i, n)
                assert tree.verify_inclusion(leaf, i, n, path, root)
            single.append(len(picks) / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        for i in picks[:500]:  # as before: size, nodes and leaf by three statements
            path = log.inclusion_proof(db, i, n)
            assert tree.verify_inclusion(log.leaf(db, i), i, n, path, root)
        single_three = min(500, len(picks)) / (time.perf_counter() - t0)
        # Tiles as the hub serves them: every level-0 tile and those above.
        every = [t for level in range(tiles.levels(n)) for t in tiles.tiles_at(level, n)]
        t0 = time.perf_counter()
        served = {(t.level, t.index): log.tile_hashes(db, t) for t in every}
        tile_rate = len(every) / (time.perf_counter() - t0)
        # A monitor's proofs from those tiles, each verified against the root.
        nodes = tiles.TileNodes(n, lambda t: tiles.split_hashes(served[(t.level, t.index)]))
        assert tree.range_hash(0, n, nodes) == root
        t0 = time.perf_counter()
        for i in picks:
            path = [tree.range_hash(s, k, nodes) for s, k in tree.inclusion_ranges(i, n)]
            assert tree.verify_inclusion(nodes(0, i), i, n, path, root)
        from_tiles = len(picks) / (time.perf_counter() - t0)
        consistency = []
        for _ in range(3):
            pairs = [
                sorted((rng.randrange(1, n + 1), rng.randrange(1, n + 1))) for _ in range(n_cons)
            ]
            t0 = time.perf_counter()
            for chunk in range(0, n_cons, BATCH):
                batch = [(a, b) for a, b in pairs[chunk : chunk + BATCH]]
                for (a, b), (root_a, root_b, proof) in zip(
                    batch, log.consistency_proofs(db, batch), strict=True
                ):
                    assert tree.verify_consistency(a, b, root_a, root_b, proof)
            consistency.append(n_cons / (time.perf_counter() - t0))
        single_cons = []
        t0 = time.perf_counter()
        for a, b in pairs[:200]:
            proof = log.consistency_proof(db, a, b)
            assert tree.verify_consistency(a, b, log.root_at(db, a), log.root_at(db, b), proof)
        single_cons.append(min(200, n_cons) / (time.perf_counter() - t0))
    engine.dispose()
    return {
        "appends_per_s": appends,
        "inclusion_proofs_per_s": statistics.median(inclusion),
        "single_inclusion_proofs_per_s": statistics.median(single),
        "single_inclusion_proofs_min_per_s": min(single),
        "single_inclusion_proofs_max_per_s": max(single),
        "single_inclusion_proofs_three_statements_per_s": single_three,
        "tiles_per_s": tile_rate,
        "tile_inclusion_proofs_per_s": from_tiles,
        "consistency_proofs_per_s": statistics.median(consistency),
        "single_consistency_proofs_per_s": statistics.median(single_cons),
    }


def group_commit(url: str, per_thread: int, per_task: int, baseline: int) -> dict[str, float]:
    """Durable appends of one entry per caller, from many callers at once (see the module)."""
    engine = make_engine(url, pool_size=16, max_overflow=0)  # the baseline shares 16
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    group = committer.committer_for(sessions)
    with sessions() as db:
        start = log.size(db)  # PostgreSQL's database already holds the proofs' entries

    cpu: dict[str, float] = {}  # this process's CPU seconds per acknowledged entry

    def threads(work: Any, count: int) -> float:
        workers = [threading.Thread(target=work, args=(t, count)) for t in range(APPENDERS)]
        t0, c0 = time.perf_counter(), time.process_time()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        cpu[work.__name__] = (time.process_time() - c0) / (APPENDERS * count)
        return APPENDERS * count / (time.perf_counter() - t0)

    def grouped(thread: int, count: int) -> None:
        for n in range(count):
            group.append("bench.group", {"thread": thread, "n": n})

    def alone(thread: int, count: int) -> None:  # one transaction, one flush, per entry
        for n in range(count):
            with sessions() as db, db.begin():
                log.append(db, "bench.alone", {"thread": thread, "n": n})

    async def tasks(count: int) -> float:
        async def appender(task: int) -> None:
            for n in range(count):
                await group.append_async("bench.async", {"task": task, "n": n})

        t0, c0 = time.perf_counter(), time.process_time()
        await asyncio.gather(*(appender(task) for task in range(ASYNC_APPENDERS)))
        cpu["async"] = (time.process_time() - c0) / (ASYNC_APPENDERS * count)
        return ASYNC_APPENDERS * count / (time.perf_counter() - t0)

    threads(grouped, 5)  # warm up: the committer's thread, connections, caches
    before = (group.groups, group.entries)
    thread_rates = [threads(grouped, per_thread) for _ in range(3)]
    thread_groups = (group.entries - before[1]) / max(1, group.groups - before[0])
    before = (group.groups, group.entries)
    async_rates = [asyncio.run(tasks(per_task)) for _ in range(3)]
    async_groups = (group.entries - before[1]) / max(1, group.groups - before[0])
    alone_rate = threads(alone, baseline)
    with sessions() as db:  # everything acknowledged is there, and the log verifies
        size, root = log.current_root(db)
        expected = (
            start + APPENDERS * (5 + 3 * per_thread + baseline) + 3 * ASYNC_APPENDERS * per_task
        )
        assert size == expected, (size, expected)
        assert log.root_at(db, size) == root
    engine.dispose()
    return {
        "group_appends_per_s": statistics.median(thread_rates),
        "group_appends_min_per_s": min(thread_rates),
        "group_appends_max_per_s": max(thread_rates),
        "group_entries_per_commit": thread_groups,
        "group_cpu_us_per_entry": cpu["grouped"] * 1e6,
        "group_async_appends_per_s": statistics.median(async_rates),
        "group_async_entries_per_commit": async_groups,
        "group_async_cpu_us_per_entry": cpu["async"] * 1e6,
        "one_commit_per_entry_appends_per_s": alone_rate,
    }


def ratios(database: str, ours: dict[str, float]) -> dict[str, float]:
    """Group commit against one commit per entry, one statement against three per proof."""
    return {
        f"{database}_group_commit_ratio": round(
            ours["group_appends_per_s"] / ours["one_commit_per_entry_appends_per_s"], 2
        ),
        f"{database}_single_proof_one_statement_ratio": round(
            ours["single_inclusion_proofs_per_s"]
            / ours["single_inclusion_proofs_three_statements_per_s"],
            2,
        ),
    }


def postgres_server() -> str | None:
    url = os.environ.get("CONCORD_DATABASE_URL", "")
    url = url if url.startswith("postgresql") else PG_DEFAULT
    try:
        with create_engine(url).connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # no server: say so and measure SQLite only
        print(f"PostgreSQL not measured: {type(exc).__name__}: {exc}".splitlines()[0])
        return None
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n, n_inc, n_cons = (10_000, 1_000, 100) if args.quick else (100_000, 10_000, 1_000)
    per_thread, per_task, baseline = (50, 5, 3) if args.quick else (400, 20, 10)
    result: dict[str, object] = {
        "entries": n,
        "inclusion_proofs": n_inc,
        "consistency_proofs": n_cons,
        "batch": BATCH,
        "appenders": APPENDERS,
        "async_appenders": ASYNC_APPENDERS,
        "cpus": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    # Warm up imports, hashing and the database drivers on a tiny log.
    with tempfile.TemporaryDirectory() as folder:
        ours(f"sqlite:///{folder}/warm.db", 2_000, 100, 10)
    with tempfile.TemporaryDirectory() as folder:
        sqlite = ours(f"sqlite:///{folder}/bench.db", n, n_inc, n_cons)
    with tempfile.TemporaryDirectory() as folder:
        sqlite.update(group_commit(f"sqlite:///{folder}/group.db", per_thread, per_task, baseline))
    print("ours, SQLite:", json.dumps({k: round(v) for k, v in sqlite.items()}))
    result.update({f"sqlite_{k}": round(v, 1) for k, v in sqlite.items()})
    result.update(ratios("sqlite", sqlite))
    server = postgres_server()
    if server:
        name = f"concord_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(server, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            url = make_url(server).set(database=name).render_as_string(hide_password=False)
            pg = ours(url, n, n_inc, n_cons)
            pg.update(group_commit(url, per_thread, per_task, baseline))
            print("ours, PostgreSQL:", json.dumps({k: round(v) for k, v in pg.items()}))
            result.update({f"postgresql_{k}": round(v, 1) for k, v in pg.items()})
            result.update(ratios("postgresql", pg))
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    theirs = peer(n, n_inc, n_cons)
    if isinstance(theirs, str):
        print(theirs)
        result["pymerkle"] = theirs
    else:
        print("pymerkle 7:", json.dumps({k: round(v) for k, v in theirs.items()}))
        result.update({f"pymerkle_{k}": round(v, 1) for k, v in theirs.items()})
        result["appends_speedup"] = round(
            sqlite["appends_per_s"] / theirs["sqlite_appends_per_s"], 2
        )
        result["group_appends_speedup"] = round(
            sqlite["group_appends_per_s"] / theirs["sqlite_appends_per_s"], 2
        )
        result["group_async_appends_speedup"] = round(
            sqlite["group_async_appends_per_s"] / theirs["sqlite_appends_per_s"], 2
        )
        result["inclusion_speedup"] = round(
            sqlite["inclusion_proofs_per_s"] / theirs["inclusion_proofs_per_s"], 2
        )
        result["single_inclusion_speedup"] = round(
            sqlite["single_inclusion_proofs_per_s"] / theirs["inclusion_proofs_per_s"], 2
        )
        result["consistency_speedup"] = round(
            sqlite["consistency_proofs_per_s"] / theirs["consistency_proofs_per_s"], 2
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
