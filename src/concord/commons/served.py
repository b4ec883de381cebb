"""The publications the hub serves, checked against its log: `concord audit --full`.

Each `commons.published` entry must be served by the revision's detail
(`GET /api/commons/repos/{kind}/{owner}/{name}/revisions/{sha}`) with the same files and
SHA-256s, provenance, conformance verdict and origin; the first that differs is named by its
entry. (A mirror or a pull verifies the bytes against these SHA-256s.)
"""

from __future__ import annotations

import json
from typing import Any

from concord.client import HubClient
from concord.errors import RemoteError
from concord.ledger.audit import ServedDiffers


def check(hub: HubClient, bodies: list[dict[str, Any]]) -> None:
    """Raises `ServedDiffers` for the first publication that the hub serves otherwise."""
    for index, body in enumerate(bodies):
        if body["kind"] != "commons.published":
            continue
        content = body["content"]
        owner, _sep, name = str(content["repository"]).partition("/")
        path = (
            f"/api/commons/repos/{content['kind']}/{owner}/{name}/revisions/{content['revision']}"
        )
        served = _get(hub, path)
        shown = {
            "revision": served.get("revision"),
            "files": {f["path"]: f["sha256"] for f in served.get("files", [])},
            "provenance": served.get("provenance"),
            "conformance": (served.get("conformance") or {}).get("passed"),
            "mirrored_from": served.get("mirrored_from"),
        }
        for field, value in shown.items():
            if value != content.get(field):
                raise ServedDiffers(
                    what=path,
                    index=index,
                    field=field,
                    served=_shown(value),
                    logged=_shown(content.get(field)),
                )


def _get(hub: HubClient, path: str) -> dict[str, Any]:
    try:
        return dict(hub.get(path))
    except RemoteError as error:
        if error.status != 404:
            raise
        return {}  # a publication in the log that the hub does not serve


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 120 else text[:117] + "…"
