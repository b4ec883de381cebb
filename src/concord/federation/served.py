"""The training rounds the hub serves, checked against its log: `concord audit --full`.

Each `federation.round` entry must be served by `GET /api/federation/jobs/{id}` as a round at
that log index with the same number, examples, aggregate digest and metrics; the first round
that differs is named by its entry.
"""

from __future__ import annotations

from typing import Any

from concord.client import HubClient
from concord.ledger.audit import ServedDiffers, difference, served_or_empty

# served field → logged field
FIELDS = {
    "number": "round",
    "examples": "examples",
    "digest": "aggregate_sha256",
    "metrics": "metrics",
}


def check(hub: HubClient, bodies: list[dict[str, Any]]) -> None:
    """Raises `ServedDiffers` for the first round entry that the hub serves otherwise."""
    jobs: dict[int, dict[str, Any]] = {}
    for index, body in enumerate(bodies):
        if body["kind"] != "federation.round":
            continue
        content = body["content"]
        job = int(content["job"])
        path = f"/api/federation/jobs/{job}"
        if job not in jobs:
            jobs[job] = served_or_empty(hub, path)
        served = {r.get("log_index"): r for r in jobs[job].get("rounds_detail", [])}.get(index)
        if served is None:
            raise ServedDiffers(
                what=path, index=index, field="rounds_detail.log_index", served="—", logged=index
            )
        fields = (
            (f"round {content.get('round')}.{mine}", served.get(mine), content.get(theirs))
            for mine, theirs in FIELDS.items()
        )
        found = difference(path, index, fields)
        if found:
            raise ServedDiffers(**found)
