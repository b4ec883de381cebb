"""`concord node`: a member's node. It reaches out to the hub (nodes sit behind firewalls; the
hub never connects to them), trains with tasks installed here on data that never leaves, and
sends back signed parameters only.

A site policy (TOML) lists what the site accepts:

    tasks = ["logreg-digits"]        # tasks this site will run
    projects = ["CP-2026-1"]         # adopted projects it takes part in ("*" for any)
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from concord.client import HubClient
from concord.federation.jobs import update_message
from concord.federation.parameters import from_safetensors, to_safetensors
from concord.federation.tasks.base import installed, load_task
from concord.members.keys import load_private, sign

log = logging.getLogger("concord.node")


@dataclass
class SitePolicy:
    tasks: set[str] | None = None
    projects: set[str] | None = None

    @classmethod
    def read(cls, path: Path | None) -> SitePolicy:
        if path is None:
            return cls()
        data = tomllib.loads(path.read_text())
        tasks = data.get("tasks")
        projects = data.get("projects")
        return cls(
            set(tasks) if tasks is not None else None,
            None if projects is None or "*" in projects else set(projects),
        )

    def allows(self, work: dict[str, Any]) -> bool:
        if self.tasks is not None and work["task"] not in self.tasks:
            return False
        return self.projects is None or work.get("reference") in self.projects


@dataclass
class NodeReport:
    trained: list[tuple[int, int]] = field(default_factory=list)
    declined: list[tuple[int, int]] = field(default_factory=list)


def measure_energy(country_iso3: str) -> Any:
    """codecarbon's offline tracker for the node's country, or None where it cannot run."""
    try:
        from codecarbon import OfflineEmissionsTracker

        return OfflineEmissionsTracker(
            country_iso_code=country_iso3,
            save_to_file=False,
            log_level="error",
            measure_power_secs=1,
        )
    except Exception:  # the tracker is an estimate; training must not depend on it
        log.warning("energy measurement unavailable")
        return None


def run_node(
    hub: str,
    member: str,
    data: Path,
    token: str,
    key_file: Path,
    *,
    policy: SitePolicy | None = None,
    once: bool = False,
    max_rounds: int | None = None,
    wait: float = 20.0,
    energy: bool = True,
    idle_exit: float | None = None,
) -> NodeReport:
    """Works rounds until stopped (or after one round with `once`)."""
    policy = policy or SitePolicy()
    private = load_private(key_file)
    report = NodeReport()
    available = sorted(installed())
    declined: set[tuple[int, int]] = set()
    idle_since = time.monotonic()
    with HubClient(hub, token, timeout=wait + 60) as client:
        country = client.get(f"/api/members/{member}")["country"]["iso3"]
        client.post("/api/federation/nodes", json={"tasks": available})
        while True:
            work = client.get("/api/federation/work", params={"wait": wait})
            if not work:
                if idle_exit is not None and time.monotonic() - idle_since > idle_exit:
                    return report
                continue
            key = (int(work["job"]), int(work["round"]))
            if key in declined:
                time.sleep(1)
                continue
            if not policy.allows(work):
                declined.add(key)
                report.declined.append(key)
                client.post(f"/api/federation/jobs/{key[0]}/rounds/{key[1]}/decline")
                continue
            _train_round(client, work, member, data, private, country, energy)
            report.trained.append(key)
            idle_since = time.monotonic()
            if once or (max_rounds is not None and len(report.trained) >= max_rounds):
                return report


def _train_round(
    client: HubClient,
    work: dict[str, Any],
    member: str,
    data: Path,
    private: Any,
    country: str,
    energy: bool,
) -> None:
    job, number = int(work["job"]), int(work["round"])
    task = load_task(work["task"])
    params = from_safetensors(client.get(f"/api/federation/jobs/{job}/rounds/{number}/parameters"))
    local = task.load_data(data)
    tracker = measure_energy(country) if energy else None
    if tracker is not None:
        tracker.start()
    result = task.train(params, local, work["config"])
    kwh = kg = 0.0
    if tracker is not None:
        kg = float(tracker.stop() or 0.0)
        final = getattr(tracker, "final_emissions_data", None)
        kwh = float(getattr(final, "energy_consumed", 0.0) or 0.0)
    evaluation = task.evaluate(result.parameters, local)
    body = to_safetensors(result.parameters)
    sha = hashlib.sha256(body).hexdigest()
    signature = sign(private, update_message(job, number, member, sha, result.num_examples))
    client.post(
        f"/api/federation/jobs/{job}/rounds/{number}/updates",
        content=body,
        headers={
            "X-Concord-Examples": str(result.num_examples),
            "X-Concord-Signature": signature,
            "X-Concord-Metrics": json.dumps(
                {"local_" + k: v for k, v in evaluation.metrics.items()}
            ),
            "X-Concord-Energy-kWh": f"{kwh:.9f}",
            "X-Concord-Emissions-kg": f"{kg:.9f}",
            "Content-Type": "application/octet-stream",
        },
    )
