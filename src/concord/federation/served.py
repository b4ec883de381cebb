"""The training rounds the hub serves, checked against its log: `concord audit --full`.

Each `federation.round` entry must be served by `GET /api/federation/jobs/{id}` as a round at
that log index with the same number, examples, aggregate digest and metrics; the first round
that differs is named by its entry.
"""

from __future__ import annotations

import json
from typing import Any

from concord.client import HubClient
from concord.errors import RemoteError
from concord.ledger.audit import ServedDiffers

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
            jobs[job] = _get(hub, path)
        served = {r.get("log_index"): r for r in jobs[job].get("rounds_detail", [])}.get(index)
        if served is None:
            raise ServedDiffers(
                what=path, index=index, field="rounds_detail.log_index", served="—", logged=index
            )
        for mine, theirs in FIELDS.items():
            if served.get(mine) != content.get(theirs):
                raise ServedDiffers(
                    what=path,
                    index=index,
                    field=f"round {content.get('round')}.{mine}",
                    served=_shown(served.get(mine)),
                    logged=_shown(content.get(theirs)),
                )


def _get(hub: HubClient, path: str) -> dict[str, Any]:
    try:
        return dict(hub.get(path))
    except RemoteError as error:
        if error.status != 404:
            raise
        return {}  # the log names a job that the hub does not serve


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 120 else text[:117] + "…"
