"""Load: a session of the organisation, with Locust, against two hubs sharing PostgreSQL.

    python benchmarks/load.py                 # 2,000 delegates, 200 nodes, 50 pulls of 100 MB,
                                              # a 600 s ballot window (--window to shorten it)
    python benchmarks/load.py --quick         # 200 delegates, 20 nodes, 5 pulls of 10 MB, 14 s

What runs, all on this machine:

1. a scratch database `concord_load_<pid>` on the PostgreSQL at `--pg` (dropped at the end,
   whatever happens), migrated by `concord init`;
2. the session, seeded through the library (`_load_seed.py`): members with delegates, tokens
   and keys, a resolution in its ballot window with a conversation, a federated job waiting
   for partners with the first `--nodes` members' nodes registered;
3. two `concord serve` processes on two ports, sharing that database and one data folder;
   the model (a safetensors file of `--model-mb`) pushed with `concord push`;
4. Locust, headless, in a subprocess (`_load_locustfile.py`): delegates (reads, opinion maps,
   statement votes, one signed ballot each within the window), nodes long-polling for work,
   pullers running real `concord pull` subprocesses; users alternate between the two ports;
5. afterwards: the ballot closed by its sponsor, the ballots counted against those Locust got
   a 201 for, the recount from the log, the log checked gap-free in the database, and
   `concord audit --full` run against the hub;
6. the ceiling: two bare FastAPI processes (`_load_bare.py`, `uvicorn.run` with the same
   arguments as `concord serve`) under the same delegates' load (same users, same think time,
   same window; nodes and pullers have no bare equivalent and are left out there).

Reported: requests/s and p50/p99 per route, errors, the peak RSS (VmHWM) of both hub
processes, the checks, and `uptime`'s load. The last line is one JSON object;
`ballot_rps_ratio` is our ballots per second over the bare route's under the same offered
load, `ballot_p99_ms` / `bare_ballot_p99_ms` the two p99s over the whole window, and
`ballot_steady_p99_ms` / `bare_ballot_steady_p99_ms` the p99s of the ballots sent after Locust
had started every user (the cold start of both servers left out).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))

BIN = Path(sys.executable).parent
CONCORD = str(BIN / "concord")
LOCUST = str(BIN / "locust")
BALLOT = "POST /api/proposals/{ref}/ballots"
# The quick run's ballot window, for ours and for the bare routes: with the seed, two hubs'
# start and the audit, the whole run stays under a minute.
QUICK_WINDOW_S = 14


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, process: subprocess.Popen[bytes], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server for port {port} exited with {process.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def vm_hwm(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def start(cmd: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for p in processes:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in processes:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def admin(pg: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(pg.replace("postgresql+psycopg", "postgresql") + "postgres") as c:
        c.autocommit = True
        c.execute(sql)


def locust(
    plan: dict[str, Any], work: Path, name: str, users: int, rate: float, env: dict[str, str]
) -> tuple[list[dict[str, str]], list[dict[str, str]], float]:
    """Runs Locust headless; returns its per-route rows, its failures and the peak total rps."""
    plan_file = work / f"plan-{name}.json"
    plan_file.write_text(json.dumps(plan))
    prefix = work / f"locust-{name}"
    cmd = [LOCUST, "-f", str(HERE / "_load_locustfile.py"), "--headless", "--only-summary"]
    cmd += ["-u", str(users), "-r", str(rate), "-t", f"{plan['window_s']}s"]
    cmd += ["--csv", str(prefix), "--csv-full-history", "--host", plan["hubs"][0]]
    cmd += ["--stop-timeout", "30", "--loglevel", "WARNING"]
    with (work / f"locust-{name}.log").open("wb") as out:
        subprocess.run(cmd, env={**env, "LOAD_PLAN": str(plan_file)}, stdout=out, stderr=out)
    rows = list(csv.DictReader((work / f"locust-{name}_stats.csv").open()))
    failures = list(csv.DictReader((work / f"locust-{name}_failures.csv").open()))
    peak = 0.0
    history = work / f"locust-{name}_stats_history.csv"
    if history.exists():
        for row in csv.DictReader(history.open()):
            if row["Name"] == "Aggregated" and row["Requests/s"] not in ("", "N/A"):
                peak = max(peak, float(row["Requests/s"]))
    return rows, failures, peak


def routes(rows: list[dict[str, str]]) -> dict[str, dict[str, float]]:
    out = {}
    for r in rows:
        out[r["Name"]] = {
            "requests": int(r["Request Count"]),
            "failures": int(r["Failure Count"]),
            "rps": round(float(r["Requests/s"]), 2),
            "p50_ms": float(r["50%"] if r["50%"] != "N/A" else 0),
            "p99_ms": float(r["99%"] if r["99%"] != "N/A" else 0),
            "max_ms": round(float(r["Max Response Time"] or 0), 1),
        }
    return out


def log_gap_free(url: str) -> dict[str, Any]:
    """Entries 0…n-1 each present once, and n the size the log's state records."""
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as c:
        count, low, high, distinct = c.execute(
            "SELECT count(*), min(idx), max(idx), count(DISTINCT idx) FROM ledger_entries"
        ).fetchone()  # type: ignore[misc]
        (size,) = c.execute("SELECT size FROM ledger_state WHERE id = 1").fetchone()  # type: ignore[misc]
    ok = count == distinct == size and low == 0 and high == size - 1
    return {"gap_free": ok, "entries": count, "size": size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--delegates", type=int)
    parser.add_argument("--nodes", type=int)
    parser.add_argument("--pullers", type=int)
    parser.add_argument("--model-mb", type=int)
    parser.add_argument("--window", type=int, help="ballot window in seconds (full: 600)")
    parser.add_argument("--think", type=float, nargs=2, help="delegates' wait between requests")
    parser.add_argument("--pg", default="postgresql+psycopg://postgres:postgres@127.0.0.1:5432/")
    parser.add_argument("--no-bare", action="store_true", help="skip the bare ceiling")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs)")
    args = parser.parse_args()
    q = args.quick
    delegates = args.delegates or (200 if q else 2000)
    nodes = args.nodes if args.nodes is not None else (20 if q else 200)
    pullers = args.pullers if args.pullers is not None else (5 if q else 50)
    model_mb = args.model_mb or (10 if q else 100)
    window = args.window = args.window or (QUICK_WINDOW_S if q else 600)
    think = args.think = args.think or ((2.0, 6.0) if q else (5.0, 15.0))
    name = f"concord_load_{os.getpid()}"
    url = f"{args.pg}{name}"
    work = Path(tempfile.mkdtemp(prefix="concord-load-"))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(HERE.parent / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
        "CONCORD_DATA_DIR": str(work / "data"),
        "CONCORD_DATABASE_URL": url,
    }
    processes: list[subprocess.Popen[bytes]] = []
    admin(args.pg, f'CREATE DATABASE "{name}"')
    try:
        result = run(args, env, work, url, processes, delegates, nodes, pullers, model_mb)
        result.update(window_s=window, think_s=list(think))
    finally:
        stop(processes)
        admin(args.pg, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result))


def run(
    args: argparse.Namespace,
    env: dict[str, str],
    work: Path,
    url: str,
    processes: list[subprocess.Popen[bytes]],
    delegates: int,
    nodes: int,
    pullers: int,
    model_mb: int,
) -> dict[str, Any]:
    from _load_seed import seed

    from commons import write_model
    from concord.config import Settings
    from concord.db import make_engine, make_sessionmaker

    q = args.quick
    window, think = args.window, args.think  # settled by main()
    ports = [free_port(), free_port()]
    hubs = [f"http://127.0.0.1:{p}" for p in ports]
    env["CONCORD_PUBLIC_URL"] = hubs[0]
    subprocess.run([CONCORD, "init"], env=env, check=True, capture_output=True)
    began = time.perf_counter()
    settings = Settings(data_dir=work / "data", database_url=url, public_url=hubs[0])
    engine = make_engine(url)
    seeded = seed(settings, make_sessionmaker(engine), delegates=delegates, nodes=nodes)
    engine.dispose()
    seed_s = time.perf_counter() - began
    print(f"seeded {delegates} delegates, {nodes} nodes in {seed_s:.1f} s", flush=True)
    for port in ports:
        processes.append(
            start([CONCORD, "serve", "--port", str(port)], work / f"serve-{port}.log", env)
        )
    for port, process in zip(ports, processes, strict=True):
        wait_port(port, process)
    model = work / "model" / "model.safetensors"
    model.parent.mkdir()
    write_model(model, model_mb * 1024 * 1024, seed=19)
    sponsor = seeded.delegates[0]
    repo = f"{sponsor['slug']}/load-model"
    push = [CONCORD, "push", repo, str(model), "--hub", hubs[0], "--token", sponsor["token"]]
    subprocess.run(push, env=env, check=True, capture_output=True)
    model.unlink()
    plan = {
        "mode": "ours",
        "hubs": hubs,
        **seeded.plan(),
        "nodes": nodes,
        "pullers": pullers,
        "pulls_each": 1,
        "repo": repo,
        "model_bytes": model_mb * 1024 * 1024,
        "concord": CONCORD,
        "work": str(work),
        "window_s": window,
        "delegate_wait": list(think),
        "poll_s": 10 if q else 25,
        "cast_file": str(work / "cast-ours.txt"),
        "sent_file": str(work / "sent-ours.txt"),
        "ballot_times_file": str(work / "ballot-times-ours.txt"),
        "spawned_file": str(work / "spawned-ours.txt"),
    }
    users = delegates + nodes + pullers
    rate = max(50.0, users / 20)  # every user started within the first 20 s or so
    print(f"load: {users} users for {window} s on {hubs}", flush=True)
    rows, failures, peak = locust(plan, work, "ours", users, rate, env)
    hwm = [vm_hwm(p.pid) for p in processes]
    load_after = os.getloadavg()
    drained = drain(hubs)
    try:
        checks = after_load(plan, hubs[0], url, work, env, sponsor["token"])
    except Exception as exc:  # still report what Locust measured
        checks = {"checks_error": f"{type(exc).__name__}: {exc}"[:300]}
    checks["drain_s"] = drained
    stop(processes)
    processes.clear()
    ours = routes(rows)
    result: dict[str, Any] = {
        "delegates": delegates,
        "nodes": nodes,
        "pullers": pullers,
        "model_mb": model_mb,
        "seed_s": round(seed_s, 1),
        "routes": ours,
        "errors": sum(int(f["Occurrences"]) for f in failures),
        "error_kinds": [f"{f['Name']}: {f['Error'][:160]} x{f['Occurrences']}" for f in failures][
            :10
        ],
        "peak_rps": round(peak, 1),
        "hub_rss_peak_mb": [round(h / 1e6, 1) for h in hwm],
        "loadavg_after": [round(x, 2) for x in load_after],
        **checks,
    }
    print(json.dumps({"ours": result}, indent=1), flush=True)
    ballot = ours.get(BALLOT, {})
    result["ballot_rps"] = ballot.get("rps", 0.0)
    result["ballot_p99_ms"] = ballot.get("p99_ms", 0.0)
    result["ballot_steady_p99_ms"], result["ballots_steady"] = steady_p99(plan)
    if not args.no_bare:
        ports = [free_port(), free_port()]
        bare_hubs = [f"http://127.0.0.1:{p}" for p in ports]
        for port in ports:
            cmd = [sys.executable, str(HERE / "_load_bare.py"), str(port)]
            processes.append(start(cmd, work / f"bare-{port}.log", env))
        for port, process in zip(ports, processes, strict=True):
            wait_port(port, process)
        bare_plan = {**plan, "mode": "bare", "hubs": bare_hubs}
        bare_plan["cast_file"] = str(work / "cast-bare.txt")
        bare_plan["sent_file"] = str(work / "sent-bare.txt")
        bare_plan["ballot_times_file"] = str(work / "ballot-times-bare.txt")
        bare_plan["spawned_file"] = str(work / "spawned-bare.txt")
        rows, failures, bare_peak = locust(bare_plan, work, "bare", delegates, rate, env)
        stop(processes)
        processes.clear()
        bare = routes(rows)
        bare_ballot = bare.get(BALLOT, {})
        result["bare_routes"] = bare
        result["bare_errors"] = sum(int(f["Occurrences"]) for f in failures)
        result["bare_peak_rps"] = round(bare_peak, 1)
        result["bare_ballot_rps"] = bare_ballot.get("rps", 0.0)
        result["bare_ballot_p99_ms"] = bare_ballot.get("p99_ms", 0.0)
        result["bare_ballot_steady_p99_ms"], _n = steady_p99(bare_plan)
        result["ballot_rps_ratio"] = round(
            result["ballot_rps"] / max(result["bare_ballot_rps"], 1e-9), 3
        )
    result["ballot_p99_under_300_ms"] = 0 < result["ballot_p99_ms"] < 300
    result["ballot_steady_p99_under_300_ms"] = 0 < result["ballot_steady_p99_ms"] < 300
    result["uptime"] = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    return result


def steady_p99(plan: dict[str, Any]) -> tuple[float, int]:
    """The p99 (nearest rank) of the ballots sent once every user had started, and how many:
    while Locust starts its users (50 a second), the hubs open their connections and run each
    code path for the first time, and that cold start would otherwise set the whole p99."""
    times = Path(plan["ballot_times_file"])
    spawned = Path(plan["spawned_file"])
    if not times.exists() or not spawned.exists():
        return 0.0, 0
    since = float(spawned.read_text())
    latencies = sorted(
        float(ms)
        for sent, ms, _status in (line.split() for line in times.read_text().splitlines())
        if float(sent) >= since
    )
    if not latencies:
        return 0.0, 0
    return latencies[max(0, math.ceil(0.99 * len(latencies)) - 1)], len(latencies)


def drain(hubs: list[str], limit: float = 900) -> float:
    """Seconds until both hubs answer a read within a second again: requests Locust gave up
    on are still queued in them when it stops, and the close must not time out behind them."""
    import httpx

    began = time.monotonic()
    while time.monotonic() - began < limit:
        try:
            for hub in hubs:
                httpx.get(f"{hub}/api/proposals", timeout=1).raise_for_status()
            break
        except httpx.HTTPError:
            time.sleep(2)
    return round(time.monotonic() - began, 1)


def after_load(
    plan: dict[str, Any], hub: str, url: str, work: Path, env: dict[str, str], token: str
) -> dict[str, Any]:
    """Closes the ballot and checks that every ballot Locust got a 201 for was counted, the
    recount from the log agrees, the log has no gap and `concord audit --full` passes."""
    import httpx

    cast, sent = (_slugs(Path(plan[name])) for name in ("cast_file", "sent_file"))
    ref = plan["reference"]
    with httpx.Client(base_url=hub, timeout=900) as client:
        # The close waits for the ballots still in flight in either hub, and counts them.
        closed = client.post(
            f"/api/proposals/{ref}/close", headers={"Authorization": f"Bearer {token}"}
        )
        closed.raise_for_status()
        decision = closed.json()
        recount = client.get("/api/governance/recount").json()
    counted = {b["member"] for b in decision["arithmetic"]["ballots"]}
    mine = [r for r in recount if r.get("proposal") == ref]
    audit = subprocess.run(
        [CONCORD, "audit", hub, "--full", "--state", str(work / "audit.json")],
        env=env,
        capture_output=True,
        text=True,
    )
    return {
        "ballots_2xx": len(cast),
        "ballots_counted": len(counted),
        # Sent and counted, but the answer never reached Locust (in flight when it stopped).
        "ballots_unanswered": len(counted - cast),
        "decision": decision.get("outcome", ""),
        "every_ballot_counted": cast <= counted <= sent
        and bool(mine)
        and sum(mine[0]["counts"].values()) == len(counted),
        "recount_matches": bool(mine) and all(r.get("matches", False) for r in mine),
        "recount": mine[:1],
        **log_gap_free(url),
        "audit_full_ok": audit.returncode == 0,
        "audit_output": (audit.stdout + audit.stderr).strip()[-300:],
    }


def _slugs(path: Path) -> set[str]:
    return set(path.read_text().split()) if path.exists() else set()


if __name__ == "__main__":
    main()
