"""An evaluation campaign on real nodes: 3 commons models evaluated by 10 `concord node`
processes against a served hub (`concord serve`, SQLite), each on its own test share.

    python benchmarks/evaluation.py            # 10 nodes, the models padded to the CNN's size
    python benchmarks/evaluation.py --quick    # 3 nodes, unpadded models

What is measured:

- the campaign's wall time: from the campaign opening (nodes already registered and waiting on
  the long poll) to the last member's results in the matrix. Each node pulls the three models
  from the commons (`concord pull`: resumable, verified chunks), loads them (safetensors, no
  pickle), evaluates on its test share and sends signed metrics;
- beside it, the same evaluations run locally one after another in this process (each site's
  data loaded, each model read from a file and evaluated): the work without the federation.
  The aim is the campaign ≤ 1.5 × that plus the transfer: the loopback time to move the same
  bytes with a plain HTTP server and client (each site fetching each model once, one site
  after another) is reported as `transfer_s`;
- a warm-up campaign of another, small model runs first (first imports and connections);
- the bytes the nodes pulled: each model once per site. A second campaign of the same three
  revisions then runs: the nodes' cache must make it pull nothing (`second_pulled_bytes`).

The models are logreg-digits parameters (trained, less trained, untrained) padded with one
untrained tensor to the FedAvg CNN's 1,663,370 parameters (`--pad-to`, 0 for none), so that
the bytes of a real model travel; the task reads only its own tensors. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from deployment import CLI, free_port, members, wait_for_hub  # the same hub and members
from sqlalchemy import select

from concord.commons import repositories as repos
from concord.commons.chunks import open_store
from concord.config import Settings
from concord.db import make_engine, make_sessionmaker, upgrade
from concord.federation import data
from concord.federation.parameters import from_safetensors, to_safetensors
from concord.federation.tables import Node
from concord.federation.tasks.base import TaskData
from concord.federation.tasks.logreg import DigitsLogReg
from concord.members.tables import Member

CNN_PARAMETERS = 1_663_370
PULLED = re.compile(r'"downloaded_bytes": (\d+)')


def models(pad_to: int) -> dict[str, bytes]:
    """Three logreg-digits models of different quality, padded to `pad_to` parameters."""
    task = DigitsLogReg()
    x, y, _xt, _yt = task.split()
    out = {}
    for name, epochs in [("digits-good", 5), ("digits-fair", 1), ("digits-none", 0)]:
        params = task.init_parameters(epochs)
        if epochs:
            params = task.train(params, TaskData(x, y), {"epochs": epochs}).parameters
        have = sum(v.size for v in params.values())
        if pad_to > have:
            rng = np.random.default_rng(epochs)
            params["pad"] = rng.normal(0, 0.01, pad_to - have).astype(np.float32)
        out[name] = to_safetensors(params)
    return out


def publish(
    settings: Settings, url: str, owner: str, files: dict[str, bytes], folder: Path
) -> None:
    sessions = make_sessionmaker(make_engine(url))
    for name, body in files.items():
        source = folder / f"{name}.safetensors"
        source.write_bytes(body)
        with sessions() as db:
            member = db.scalars(select(Member).where(Member.slug == owner)).one()
            repos.publish_model(
                db,
                open_store(settings),
                member,
                name,
                {"model.safetensors": source},
                licence="mit",
                card_text="",
                provenance={},
            )
            db.commit()


def local_baseline(sites: list[Path], files: dict[str, bytes], folder: Path) -> float:
    """The same evaluations one after another in this process: every site's data, every model
    read from its file and evaluated."""
    task = DigitsLogReg()
    paths = {}
    for name, body in files.items():
        paths[name] = folder / f"local-{name}.safetensors"
        paths[name].write_bytes(body)
    started = time.perf_counter()
    for site in sites:
        local = task.load_data(site)
        for path in paths.values():
            task.evaluate(from_safetensors(path.read_bytes()), local)
    return time.perf_counter() - started


def transfer_baseline(files: dict[str, bytes], sites: int) -> float:
    """Each site fetching each model once over loopback from a plain HTTP server, in turn."""
    bodies = list(files.values())

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = bodies[int(self.path.strip("/"))]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        started = time.perf_counter()
        for _site in range(sites):
            with httpx.Client() as client:
                for i in range(len(bodies)):
                    client.get(f"http://127.0.0.1:{server.server_port}/{i}")
        return time.perf_counter() - started
    finally:
        server.shutdown()


def campaign(hub: str, token: str, names: list[str], title: str) -> int:
    answer = httpx.post(
        f"{hub}/api/campaigns",
        json={
            "title": title,
            "task": "logreg-digits",
            "models": [{"repo": f"member-00/{n}"} for n in names],
            "metric": "accuracy",
            "threshold": 0.9,
        },
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    answer.raise_for_status()
    return int(answer.json()["campaign_id"])


def wait_for_results(
    hub: str, campaign_id: int, expected: int, limit: float = 600
) -> dict[str, Any]:
    deadline = time.monotonic() + limit
    while True:
        matrix = httpx.get(f"{hub}/api/campaigns/{campaign_id}", timeout=30).json()
        if all(len(m["cells"]) == expected for m in matrix["models"]):
            return matrix
        if time.monotonic() > deadline:
            raise SystemExit(f"campaign {campaign_id} incomplete: {matrix}")
        time.sleep(0.1)


def pulled(logs: list[Path]) -> int:
    return sum(int(n) for log in logs for n in PULLED.findall(log.read_text(errors="replace")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--pad-to", type=int, default=CNN_PARAMETERS)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.nodes, args.pad_to = min(args.nodes, 3), 0

    folder = Path(tempfile.mkdtemp(prefix="concord-evaluation-"))
    url = f"sqlite:///{folder / 'concord.db'}"
    env = {
        **os.environ,
        "CONCORD_DATA_DIR": str(folder),
        "CONCORD_DATABASE_URL": url,
        "OMP_NUM_THREADS": "1",  # ten nodes share the machine: one thread each
    }
    upgrade(make_engine(url))
    settings = Settings(data_dir=folder, database_url=url)
    sites = members(url, args.nodes, folder / "keys")
    files = models(args.pad_to)
    publish(settings, url, "member-00", files, folder)
    publish(settings, url, "member-00", {"warm-up": models(0)["digits-none"]}, folder)
    task = DigitsLogReg()
    x, y, x_test, y_test = task.split()
    train, test = data.iid(len(x), args.nodes, seed=1), data.iid(len(x_test), args.nodes, seed=2)
    site_folders = []
    for (slug, _s, _k), tr, te in zip(sites, train, test, strict=True):
        site = folder / "sites" / slug
        data.write_partition(site, x[tr], y[tr], x_test[te], y_test[te])
        (folder / f"{slug}.toml").write_text('evaluate = ["logreg-digits"]\n')
        site_folders.append(site)

    port = free_port()
    hub_url = f"http://127.0.0.1:{port}"
    hub_log = (folder / "hub.log").open("wb")
    hub = subprocess.Popen(
        [*CLI, "serve", "--port", str(port)], env=env, stdout=hub_log, stderr=subprocess.STDOUT
    )
    nodes: list[subprocess.Popen[bytes]] = []
    logs = [folder / f"{slug}.log" for slug, _s, _k in sites]
    try:
        wait_for_hub(hub_url)
        for (slug, secret, key_file), site, log in zip(sites, site_folders, logs, strict=True):
            nodes.append(
                subprocess.Popen(
                    [
                        *CLI,
                        "node",
                        *("--member", slug, "--data", str(site), "--hub", hub_url),
                        *("--token", secret, "--key-file", str(key_file)),
                        *("--policy", str(folder / f"{slug}.toml"), "--wait", "25"),
                        "--no-energy",
                    ],
                    env=env,
                    stdout=log.open("wb"),
                    stderr=subprocess.STDOUT,
                )
            )
        # Every node registered and waiting on the long poll.
        sessions = make_sessionmaker(make_engine(url))
        while True:
            with sessions() as db:
                if len(db.scalars(select(Node.id)).all()) == args.nodes:
                    break
            time.sleep(0.2)
        time.sleep(1.0)
        token = sites[0][1]
        # Warm-up: a campaign of a small other model (the nodes' and the hub's first imports
        # and connections are not the campaign's cost).
        wait_for_results(hub_url, campaign(hub_url, token, ["warm-up"], "Warm-up"), args.nodes)
        time.sleep(0.5)
        warm_bytes = pulled(logs)
        started = time.perf_counter()
        first = campaign(hub_url, token, list(files), "Evaluation benchmark")
        matrix = wait_for_results(hub_url, first, args.nodes)
        campaign_s = time.perf_counter() - started
        time.sleep(0.5)  # the nodes' log lines after their last answer
        first_bytes = pulled(logs) - warm_bytes
        started = time.perf_counter()
        second = campaign(hub_url, token, list(files), "Evaluation benchmark, again")
        wait_for_results(hub_url, second, args.nodes)
        second_s = time.perf_counter() - started
        time.sleep(0.5)
        second_bytes = pulled(logs) - first_bytes - warm_bytes
    finally:
        for p in nodes:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in nodes:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        hub.send_signal(signal.SIGTERM)
        hub.wait(timeout=30)
        hub_log.close()

    local_s = min(local_baseline(site_folders, files, folder) for _ in range(3))
    transfer_s = min(transfer_baseline(files, args.nodes) for _ in range(3))
    model_bytes = sum(len(b) for b in files.values())
    for m in matrix["models"]:
        print(
            f"{m['repo']:>22}  mean {m['mean']:.3f}  worst {m['worst']:.3f} ({m['worst_member']})"
            f"  spread {m['spread']:.3f}  pass {m['pass_share']:.0%}"
        )
    print(
        f"campaign of {len(files)} models on {args.nodes} nodes: {campaign_s:.2f} s "
        f"(again, cached: {second_s:.2f} s); locally one after another {local_s:.3f} s, "
        f"moving the bytes {transfer_s:.2f} s; pulled {first_bytes:,} bytes "
        f"({first_bytes / max(model_bytes * args.nodes, 1):.2f} × each model once per site), "
        f"again {second_bytes:,}"
    )
    print(
        json.dumps(
            {
                "benchmark": "evaluation",
                "nodes": args.nodes,
                "models": len(files),
                "parameters_per_model": args.pad_to or 650,
                "campaign_s": round(campaign_s, 3),
                "second_campaign_s": round(second_s, 3),
                "local_sequential_s": round(local_s, 4),
                "transfer_s": round(transfer_s, 3),
                "campaign_vs_local_plus_transfer_ratio": round(
                    campaign_s / max(local_s + transfer_s, 1e-9), 2
                ),
                "pulled_bytes": first_bytes,
                "model_bytes_once_per_site": model_bytes * args.nodes,
                "second_pulled_bytes": second_bytes,
                "worst_member_accuracy": {m["repo"]: m["worst"] for m in matrix["models"]},
            }
        )
    )


if __name__ == "__main__":
    main()
