"""Secure aggregation (SecAgg+): the cost of a round with and without it.

    python benchmarks/secagg.py            # 10, 100 and 1,000 simulated clients
    python benchmarks/secagg.py --quick    # 10 and 100 clients; Flower at 10 (under a minute
                                           # once benchmarks/.venv-flower exists)

The work: every client holds a delta the size of logreg-digits (650 parameters, float64) and
a weight; the server needs their weighted mean. "plain" is that mean over the clear deltas (as
the hub computes it without SecAgg+); "secagg" runs a whole SecAgg+ round in this process
through the functions `concord node` and the hub call (privacy.secagg: key agreement, shares,
quantisation, masks, reveals, unmasking), with 10 % of the clients dropping out after sharing
keys. The figure is the whole round's compute for all clients plus the server, on one core:
a real round spreads the clients' part over their own machines. Bytes per client: what a
client sends and receives in the protocol's messages (public keys and the roster, encrypted
shares, the masked vector, the reveals), against 4·d bytes for a plain float32 update.
Neighbourhoods: all others up to 10 clients, then k = 2⌈log2 n⌉ + 2 (SecAgg+'s logarithmic
degree); t: a majority of the neighbourhood.

Flower, in the same run: its SecAggPlusWorkflow (flwr.server.workflow, in DefaultWorkflow) in
its simulation runtime, same vector size, clients, neighbourhood (Flower's num_shares counts
the client itself: k + 1) and threshold t, clip range 4, no dropout — beside ours also without
dropout. Flower runs in its own virtual environment, benchmarks/.venv-flower, created on first
use (a few minutes; `flwr` cannot go into the project's environment), see _flower_secagg.py.
Its round time is the server's configure_fit → aggregate_fit, median of rounds 2–3: the four
stages' messages through Flower's runtime and the clients' work in Ray's workers on the same
two cores. Flower's bytes per client are not measured.

    python benchmarks/secagg.py --nodes 10   # 10 real `concord node` processes and a hub

The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import _flower_venv
import numpy as np

from concord.federation.privacy import secagg

SIZE = 650  # logreg-digits: 64 × 10 weights + 10 biases
CLIP_RANGE = 4.0


def neighbourhood(clients: int) -> int:
    return 0 if clients <= 10 else 2 * math.ceil(math.log2(clients)) + 2


def run(clients: int, repeats: int, drop: bool = True) -> dict[str, float]:
    rng = np.random.default_rng(clients)
    deltas = {i: rng.uniform(-1, 1, SIZE) for i in range(1, clients + 1)}
    weights = {i: int(rng.integers(50, 300)) for i in deltas}
    dropped = list(range(1, clients + 1, 10)) if drop else []  # 10 %
    plain_times, secure_times = [], []
    traffic = 0.0
    error = 0.0
    for r in range(repeats + 1):  # the first is a warm-up
        started = time.perf_counter()
        kept = [i for i in deltas if i not in dropped]
        plain = sum(deltas[i] * weights[i] for i in kept) / sum(weights[i] for i in kept)
        middle = time.perf_counter()
        mean, result = secagg.secure_mean(
            deltas,
            weights,
            clip_range=CLIP_RANGE,
            num_shares=neighbourhood(clients),
            threshold=0,
            drop_after_shares=dropped,
            seed=r,
        )
        ended = time.perf_counter()
        if r:
            plain_times.append(middle - started)
            secure_times.append(ended - middle)
        traffic = result.bytes_per_client
        error = float(np.max(np.abs(mean - plain)))
        bound = 1 / secagg.scale_for(CLIP_RANGE, sum(weights.values()))
        assert error <= bound, (error, bound)
    return {
        "clients": clients,
        "num_shares": neighbourhood(clients) or clients - 1,
        "plain_round_s": statistics.median(plain_times),
        "secagg_round_s": statistics.median(secure_times),
        "plain_bytes_per_client": 4 * SIZE,
        "secagg_bytes_per_client": round(traffic),
        "max_error": error,
        "error_bound": bound,
    }


def real_nodes(count: int, rounds: int) -> dict[str, Any]:
    """`count` real `concord node` processes against a served hub (`concord serve`, SQLite):
    a plain logreg-digits job of `rounds` rounds, then the same job with SecAgg+ (all others
    as neighbours up to 10 nodes, t a majority, clip_range 4, no dropout). Round time is the
    hub's own record, round opened → round closed; round 1 (nodes loading their task) is left
    out of the median. Every node runs with one thread, as separate sites would not compete."""
    from deployment import CLI, free_port, members, wait_for_hub
    from sqlalchemy import select

    from concord.config import Settings
    from concord.db import make_engine, make_sessionmaker, upgrade
    from concord.federation import data, jobs
    from concord.federation.tables import Job, Round, Update
    from concord.federation.tasks.logreg import DigitsLogReg
    from concord.governance.jobspec import JobSpec

    folder = Path(tempfile.mkdtemp(prefix="concord-secagg-"))
    url = f"sqlite:///{folder / 'concord.db'}"
    env = {**os.environ, "CONCORD_DATA_DIR": str(folder), "CONCORD_DATABASE_URL": url}
    env["OMP_NUM_THREADS"] = "1"
    upgrade(make_engine(url))
    sites = members(url, count, folder / "keys")
    x, y, _xt, _yt = DigitsLogReg().split()
    for (slug, _s, _k), part in zip(sites, data.iid(len(x), count, seed=1), strict=True):
        data.write_partition(folder / "sites" / slug, x[part], y[part])
    settings = Settings(data_dir=folder, database_url=url)
    sessions = make_sessionmaker(make_engine(url))

    def spec(secure: bool) -> JobSpec:
        body: dict[str, Any] = {
            "task": "logreg-digits",
            "participants": {"members": [s for s, _t, _k in sites]},
            "rounds": rounds,
            "min_participants": count,
            "round_deadline_s": 300,
            "local": {"epochs": 1, "batch_size": 10, "learning_rate": 0.3},
        }
        if secure:
            body["privacy"] = {"secure_aggregation": {"clip_range": CLIP_RANGE}}
        return JobSpec.model_validate(body)

    port = free_port()
    hub_url = f"http://127.0.0.1:{port}"
    with (folder / "hub.log").open("wb") as log:
        hub = subprocess.Popen(
            [*CLI, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    nodes: list[subprocess.Popen[bytes]] = []
    out: dict[str, Any] = {"nodes": count, "rounds": rounds}
    started = time.perf_counter()
    try:
        wait_for_hub(hub_url)
        for slug, secret, key_file in sites:
            with (folder / f"{slug}.log").open("wb") as log:
                nodes.append(
                    subprocess.Popen(
                        [
                            *CLI,
                            *("node", "--member", slug, "--data", str(folder / "sites" / slug)),
                            *("--hub", hub_url, "--token", secret, "--key-file", str(key_file)),
                            *("--max-rounds", str(2 * rounds), "--no-energy", "--wait", "1"),
                        ],
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        for mode in ("plain", "secagg"):
            with sessions() as db:
                job = jobs.create_job(db, settings, spec(mode == "secagg"), title=f"Bench {mode}")
                db.commit()
                job_id = job.id
            deadline = time.monotonic() + 900
            while time.monotonic() < deadline:
                with sessions() as db:
                    row = db.get(Job, job_id)
                    assert row is not None
                    if row.status != "running" and row.rounds_done >= rounds:
                        break
                time.sleep(0.5)
            else:
                raise RuntimeError(f"the {mode} job did not finish in 15 minutes; see {folder}")
            with sessions() as db:
                done = db.scalars(
                    select(Round)
                    .where(Round.job_id == job_id, Round.status == "closed")
                    .order_by(Round.number)
                ).all()
                times = [(r.closed_at - r.opened_at).total_seconds() for r in done if r.closed_at]
                stored = db.scalars(
                    select(Update.path).where(Update.round_id.in_([r.id for r in done]))
                ).all()
                attempts = max(r.attempt for r in done)
            out[f"{mode}_round_s"] = round(statistics.median(times[1:] or times), 3)
            out[f"{mode}_round_times_s"] = [round(t, 3) for t in times]
            out[f"{mode}_max_attempt"] = attempts
            out[f"{mode}_updates_stored"] = len(stored)
            print(f"{count} real nodes, {mode}: rounds {times} s", flush=True)
    finally:
        for p in nodes:
            if p.poll() is None:
                p.kill()
        hub.send_signal(signal.SIGTERM)
        hub.wait(timeout=30)
    out["overhead_ratio"] = round(out["secagg_round_s"] / out["plain_round_s"], 2)
    out["wall_s"] = round(time.perf_counter() - started, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--nodes", type=int, help="instead: this many real `concord node` processes and a hub"
    )
    parser.add_argument("--rounds", type=int, default=4, help="rounds per job with --nodes")
    args = parser.parse_args()
    if args.nodes:
        print(json.dumps({"benchmark": "secagg-real-nodes", **real_nodes(args.nodes, args.rounds)}))
        return
    sizes = [10, 100] if args.quick else [10, 100, 1000]
    rows = []
    for clients in sizes:
        row = run(clients, repeats=3 if clients < 1000 else 1)
        rows.append(row)
        print(
            f"{clients:>5} clients (k={row['num_shares']}): plain {row['plain_round_s']:.4f} s, "
            f"SecAgg+ {row['secagg_round_s']:.3f} s; bytes/client {row['plain_bytes_per_client']}"
            f" vs {row['secagg_bytes_per_client']}; max error {row['max_error']:.2e} "
            f"(bound {row['error_bound']:.2e})"
        )
    out: dict[str, object] = {"vector_size": SIZE}
    for clients in [10] if args.quick else [10, 100]:
        k = neighbourhood(clients) or clients - 1
        t = secagg.threshold_for(k, 0)
        ours_nodrop = run(clients, repeats=3, drop=False)["secagg_round_s"]
        theirs = _flower_venv.run("_flower_secagg.py", clients, k, t, SIZE, 3)
        if isinstance(theirs, str):
            print(f"Flower at {clients} clients: {theirs}")
            out[f"flower_{clients}"] = theirs
            continue
        rounds = [line["s"] for line in theirs if "round" in line]
        if len(rounds) < 3:
            theirs = f"Flower ran {len(rounds)} of 3 rounds: {_flower_venv.last_stderr[-800:]}"
            print(f"Flower at {clients} clients: {theirs}")
            out[f"flower_{clients}"] = theirs
            continue
        assert all(line["failures"] == 0 for line in theirs if "round" in line)
        flower_s = statistics.median(rounds[1:])
        print(
            f"{clients:>5} clients, no dropout (k={k}, t={t}): ours {ours_nodrop:.3f} s, Flower "
            f"SecAggPlusWorkflow {flower_s:.3f} s (rounds {[round(r, 2) for r in rounds]}); "
            f"Flower / ours {flower_s / ours_nodrop:.1f}"
        )
        out[f"secagg_nodrop_round_s_{clients}"] = round(ours_nodrop, 4)
        out[f"flower_secaggplus_round_s_{clients}"] = round(flower_s, 3)
        out[f"flower_over_ours_{clients}"] = round(flower_s / ours_nodrop, 2)
    out["flwr"] = _flower_venv.version()
    for row in rows:
        n = row["clients"]
        out[f"plain_round_s_{n}"] = round(row["plain_round_s"], 6)
        out[f"secagg_round_s_{n}"] = round(row["secagg_round_s"], 4)
        out[f"secagg_bytes_per_client_{n}"] = row["secagg_bytes_per_client"]
        out[f"secagg_overhead_ratio_{n}"] = round(
            row["secagg_round_s"] / max(row["plain_round_s"], 1e-9), 1
        )
    out["plain_bytes_per_client"] = 4 * SIZE
    out["clients"] = sizes
    print(json.dumps(out))


if __name__ == "__main__":
    main()
