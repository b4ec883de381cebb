"""A real deployment on one machine: a hub (`concord serve`, real Uvicorn) and 10 `concord node`
processes over HTTP on 127.0.0.1, running a few rounds.

    python benchmarks/deployment.py                      # mnist-cnn when installed, 5 rounds
    python benchmarks/deployment.py --task logreg-digits # padded to the CNN's size
    python benchmarks/deployment.py --quick              # 5 nodes, 3 rounds, 600 examples each

What is measured:

- the hub's overhead per round beyond the nodes' training: from the hub's timestamps, round
  open → next round open, minus the training time (reported by the node in its log) of the node
  whose update arrived last. It covers waking the waiting nodes, their downloads and uploads,
  the hub's checks, the aggregation, the checkpoint and opening the next round. Round 1 (nodes
  loading their task and data) is reported but left out of the median;
- beside it, the time to move the same bytes over loopback with a plain HTTP server
  (`http.server`) and the nodes' HTTP client (httpx): 10 concurrent downloads of the model,
  then 10 concurrent uploads (median of 5). The aim: overhead ≤ 1.5 × that;
- the hub process's memory, sampled from /proc (VmRSS every 10 ms, and VmHWM): its peak above
  the idle hub (after start-up and the nodes' registrations), in copies of the model. The aim:
  near two copies (the global model and the aggregate), not eleven (ten updates and the model).

The target model is the FedAvg paper's CNN (1,663,370 parameters, task `mnist-cnn`). Where that
task is not installed, `logreg-digits` runs with its parameters padded by one untrained tensor
to the CNN's size (`--pad-to`), so that the same bytes travel; the output says which ran.
The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from sqlalchemy import select

from concord.db import make_engine, make_sessionmaker, upgrade
from concord.federation import data, jobs
from concord.federation.parameters import write_safetensors
from concord.federation.tables import Job, Round, Update
from concord.federation.tasks.base import installed, load_task
from concord.governance.jobspec import JobSpec
from concord.members import directory, keys, people, tokens
from concord.members.tables import Member

CNN_PARAMETERS = 1_663_370
COUNTRIES = ["KE", "BR", "NO", "IN", "GH", "PE", "VN", "FR", "EG", "ID", "MX", "NP"]
CLI = [sys.executable, "-c", "from concord.cli import main; main()"]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_hub(url: str) -> None:
    """Until the hub answers its health check (it imports the whole app first)."""
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)


class MemorySampler(threading.Thread):
    """VmRSS of a process every `interval` seconds, with the wall-clock time."""

    def __init__(self, pid: int, interval: float = 0.01) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, float]] = []
        self.stopped = threading.Event()

    def status(self, field: str) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB → MB
        return 0.0

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                self.samples.append((time.time(), self.status("VmRSS")))
            except (FileNotFoundError, ProcessLookupError):
                return
            time.sleep(self.interval)


def members(url: str, count: int, keys_dir: Path) -> list[tuple[str, str, Path]]:
    """`count` members, each with a delegate's token and a private key on disk."""
    sessions = make_sessionmaker(make_engine(url))
    out = []
    for i in range(count):
        slug = f"member-{i:02d}"
        private = keys.generate()
        with sessions() as db:
            member = directory.admit(
                db, slug=slug, name=slug.title(), kind="country", country_code=COUNTRIES[i]
            )
            person = people.add_person(
                db, name=f"Delegate {i}", email=f"d{i}@bench.example", role="delegate", member=slug
            )
            secret = tokens.issue(db, person, label="bench").secret
            keys.register(db, db.get(Member, member.id), keys.public_base64(private))  # type: ignore[arg-type]
            db.commit()
        key_file = keys_dir / f"{slug}.pem"
        keys.save_private(private, key_file)
        out.append((slug, secret, key_file))
    return out


def task_data(task: Any) -> tuple[np.ndarray, np.ndarray]:
    if hasattr(task, "split"):
        x, y, *_rest = task.split()
        return x, y
    return task.dataset()


def pad(settings: Any, job: Job, size: int) -> None:
    """Adds one untrained tensor to the job's initial model so that it has `size` parameters
    (before the job is committed, so that no node sees the model unpadded)."""
    path = jobs.folder(settings) / job.parameters
    params = jobs.from_safetensors(path.read_bytes())
    have = sum(v.size for v in params.values())
    if size > have:
        params["pad"] = np.random.default_rng(0).normal(0, 0.01, size - have).astype(np.float32)
    job.digest = write_safetensors(path, params)


def transfer_baseline(model: bytes, clients: int, repeats: int = 5) -> float:
    """Seconds for `clients` concurrent downloads then `clients` concurrent uploads of `model`
    between a plain `http.server` and httpx over loopback (median of `repeats`)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(model)))
            self.end_headers()
            self.wfile.write(model)

        def do_POST(self) -> None:
            remaining = int(self.headers["Content-Length"])
            while remaining:
                remaining -= len(self.rfile.read(min(remaining, 1 << 16)))
            self.send_response(201)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/model"
    times = []
    with ThreadPoolExecutor(clients) as pool:
        for _ in range(repeats + 1):  # the first one warms up
            started = time.perf_counter()
            got = list(pool.map(lambda _i: httpx.get(url, timeout=60).content, range(clients)))
            assert all(len(g) == len(model) for g in got)
            list(pool.map(lambda _i: httpx.post(url, content=model, timeout=60), range(clients)))
            times.append(time.perf_counter() - started)
    server.shutdown()
    return statistics.median(times[1:])


def node_timings(log: Path) -> dict[int, dict[str, float]]:
    """Round → the node's own timings (its `round trained` log lines)."""
    out = {}
    for line in log.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("message") == "round trained":
            out[int(entry["round"])] = entry
    return out


def final_accuracy(task: Any, folder: Path, job_id: int) -> float | None:
    """The finished job's model on the task's public test set, where the task has one."""
    public = getattr(task, "public_test", None)
    if public is None:
        return None
    from concord.federation.parameters import from_safetensors
    from concord.federation.tasks.base import TaskData

    url = f"sqlite:///{folder / 'concord.db'}"
    with make_sessionmaker(make_engine(url))() as db:
        job = db.get(Job, job_id)
        assert job is not None
        checkpoint = folder / "store" / "federation" / job.parameters
    x, y = public()
    params = from_safetensors(checkpoint.read_bytes())
    return float(task.evaluate(params, TaskData(x, y)).metrics["accuracy"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default_task = "mnist-cnn" if "mnist-cnn" in installed() else "logreg-digits"
    parser.add_argument("--task", default=default_task)
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--pad-to",
        type=int,
        default=None,
        help="benchmark only: pad the model to this many parameters (default: the CNN's size "
        "when the task is logreg-digits)",
    )
    parser.add_argument(
        "--per-node",
        type=int,
        default=None,
        help="examples per node at most (default: an equal share of the training set)",
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--evaluate", action="store_true", help="the hub evaluates every round (counted in)"
    )
    args = parser.parse_args()
    if args.quick:
        # The overhead measured does not depend on how long the nodes train: fewer examples
        # keep the quick run under a minute (3 rounds: round 1 is left out of the median).
        args.nodes, args.rounds = min(args.nodes, 5), 3
        args.per_node = args.per_node or 600
    pad_to = args.pad_to
    if pad_to is None and args.task == "logreg-digits":
        pad_to = CNN_PARAMETERS

    folder = Path(tempfile.mkdtemp(prefix="concord-deploy-"))
    url = f"sqlite:///{folder / 'concord.db'}"
    # Ten nodes share two cores here: one thread each, as separate sites would not compete.
    env = {
        **os.environ,
        "CONCORD_DATA_DIR": str(folder),
        "CONCORD_DATABASE_URL": url,
        "OMP_NUM_THREADS": "1",
    }
    upgrade(make_engine(url))
    sites = members(url, args.nodes, folder / "keys")
    task = load_task(args.task)
    x, y = task_data(task)
    parts = [part[: args.per_node] for part in data.iid(len(x), args.nodes, seed=1)]
    for (slug, _s, _k), part in zip(sites, parts, strict=True):
        data.write_partition(folder / "sites" / slug, x[part], y[part])
    spec = JobSpec.model_validate(
        {
            "task": args.task,
            "participants": {"members": [s for s, _t, _k in sites]},
            "rounds": args.rounds,
            "min_participants": args.nodes,
            "round_deadline_s": 600,
            "local": {"epochs": 1, "batch_size": 10, "learning_rate": 0.1},
            # Evaluating the CNN on 10,000 test images is work the decision may ask of the
            # hub, not overhead of moving updates: off unless --evaluate; the benchmark scores
            # the final model itself.
            "evaluate_every": 1 if args.evaluate else 0,
        }
    )
    from concord.config import Settings

    settings = Settings(data_dir=folder, database_url=url)
    sessions = make_sessionmaker(make_engine(url))

    port = free_port()
    hub_log = (folder / "hub.log").open("wb")
    hub = subprocess.Popen(
        [*CLI, "serve", "--port", str(port)], env=env, stdout=hub_log, stderr=subprocess.STDOUT
    )
    hub_url = f"http://127.0.0.1:{port}"
    nodes: list[subprocess.Popen[bytes]] = []
    try:
        wait_for_hub(hub_url)
        sampler = MemorySampler(hub.pid)
        sampler.start()
        for slug, secret, key_file in sites:
            log = (folder / f"{slug}.log").open("wb")
            nodes.append(
                subprocess.Popen(
                    [
                        *CLI,
                        "node",
                        "--member",
                        slug,
                        "--data",
                        str(folder / "sites" / slug),
                        "--hub",
                        hub_url,
                        "--token",
                        secret,
                        "--key-file",
                        str(key_file),
                        "--max-rounds",
                        str(args.rounds),
                        "--no-energy",
                    ],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        # The idle hub: started, every node registered and waiting.
        while True:
            with sessions() as db:
                from concord.federation.tables import Node

                if len(db.scalars(select(Node.id)).all()) == args.nodes:
                    break
            time.sleep(0.2)
        time.sleep(1.0)
        idle_mb = sampler.status("VmRSS")
        with sessions() as db:
            job = jobs.create_job(db, settings, spec, title="Deployment benchmark")
            if pad_to:
                pad(settings, job, pad_to)
            db.commit()
            job_id = job.id
        for p in nodes:
            p.wait(timeout=1800)
        hwm_mb = sampler.status("VmHWM")
        sampler.stopped.set()
    finally:
        for p in nodes:
            if p.poll() is None:
                p.kill()
        hub.send_signal(signal.SIGTERM)
        hub.wait(timeout=30)
        hub_log.close()

    with sessions() as db:
        job = db.get(Job, job_id)
        assert job is not None and job.status == "completed", "the job did not complete"
        model_path = folder / "store" / "federation" / f"job-{job_id}" / "round-0.safetensors"
        model = model_path.read_bytes()
        model_mb = len(model) / 1e6
        rounds = db.scalars(
            select(Round).where(Round.job_id == job_id).order_by(Round.number)
        ).all()
        assert all(r.status == "closed" and r.attempt == 1 for r in rounds)
        slugs = {m.id: m.slug for m in db.scalars(select(Member)).all()}
        timings = {slug: node_timings(folder / f"{slug}.log") for slug, _s, _k in sites}
        rows = []
        for i, r in enumerate(rounds):
            updates = db.scalars(
                select(Update).where(Update.round_id == r.id).order_by(Update.received_at)
            ).all()
            last = updates[-1]
            end = rounds[i + 1].opened_at if i + 1 < len(rounds) else r.closed_at
            assert end is not None
            duration = (end - r.opened_at).total_seconds()
            node = timings[slugs[last.member_id]][r.number]
            rows.append(
                {
                    "round": r.number,
                    "duration_s": duration,
                    "train_s": node["train_s"],
                    "overhead_s": duration - node["train_s"],
                    "to_last_update_s": (last.received_at - r.opened_at).total_seconds(),
                    "close_s": (end - last.received_at).total_seconds(),
                    "fetch_s": node["fetch_s"],
                    "send_s": node["send_s"],
                    "closed_at": r.closed_at,
                    "last_at": last.received_at,
                }
            )
    transfer_s = transfer_baseline(model, args.nodes)
    accuracy = final_accuracy(task, folder, job_id)

    # The hub's memory above idle, and its growth while each round closes.
    growth = []
    for row in rows:
        start = row["last_at"].timestamp() - 0.05
        stop = row["closed_at"].timestamp() + 0.05
        before = [mb for t, mb in sampler.samples if t < start][-1:] or [idle_mb]
        during = [mb for t, mb in sampler.samples if start <= t <= stop] or before
        growth.append(max(during) - before[0])
    peak_mb = hwm_mb - idle_mb

    ran = args.task + (f", padded to {pad_to:,} parameters" if pad_to else "")
    print(f"task: {ran}; {args.nodes} nodes; {len(rows)} rounds; model {model_mb:.2f} MB")
    print(
        f"{'round':>5} {'round_s':>8} {'train_s':>8} {'overhead_s':>10} "
        f"{'→last_upd':>9} {'close':>7} {'fetch':>7} {'send':>7} {'agg_growth_MB':>13}"
    )
    for row, g in zip(rows, growth, strict=True):
        print(
            f"{row['round']:>5} {row['duration_s']:>8.3f} {row['train_s']:>8.3f} "
            f"{row['overhead_s']:>10.3f} {row['to_last_update_s']:>9.3f} {row['close_s']:>7.3f} "
            f"{row['fetch_s']:>7.3f} {row['send_s']:>7.3f} {g:>13.1f}"
        )
    steady = rows[1:] or rows
    overhead_s = statistics.median(r["overhead_s"] for r in steady)
    print(
        f"overhead per round (median of rounds 2–{len(rows)}): {overhead_s:.3f} s; plain HTTP "
        f"transfer of the same bytes ({args.nodes} downloads + {args.nodes} uploads): "
        f"{transfer_s:.3f} s; ratio {overhead_s / transfer_s:.2f} (aim ≤ 1.5)"
    )
    print(
        f"hub memory: idle {idle_mb:.1f} MB, VmHWM {hwm_mb:.1f} MB, peak above idle "
        f"{peak_mb:.1f} MB = {peak_mb / model_mb:.1f} model copies (aim: near 2, not "
        f"{args.nodes + 1}); growth while closing a round at most {max(growth):.1f} MB"
    )
    if accuracy is not None:
        print(f"final model: test accuracy {accuracy:.4f} ({args.task}, public test set)")
    shutil.rmtree(folder, ignore_errors=True)
    print(
        json.dumps(
            {
                "task": args.task,
                "padded_to": pad_to,
                "nodes": args.nodes,
                "per_node": args.per_node,
                "rounds": len(rows),
                "model_mb": round(model_mb, 3),
                "overhead_s": round(overhead_s, 4),
                "transfer_s": round(transfer_s, 4),
                "ratio": round(overhead_s / transfer_s, 3),
                "hub_peak_mb": round(peak_mb, 1),
                "hub_peak_models": round(peak_mb / model_mb, 2),
                "hub_vmhwm_mb": round(hwm_mb, 1),
                "hub_idle_mb": round(idle_mb, 1),
                "close_growth_mb": round(max(growth), 1),
                "hub_evaluates": args.evaluate,
                "test_accuracy": None if accuracy is None else round(accuracy, 4),
                "when": datetime.now().isoformat(timespec="seconds"),
            }
        )
    )


if __name__ == "__main__":
    main()
