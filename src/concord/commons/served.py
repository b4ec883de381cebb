"""The publications the hub serves, checked against its log: `concord audit --full`.

Each `commons.published` entry must be served by the revision's detail
(`GET /api/commons/repos/{kind}/{owner}/{name}/revisions/{sha}`) with the same files and
SHA-256s, provenance, conformance verdict and origin; the first that differs is named by its
entry. (A mirror or a pull verifies the bytes against these SHA-256s.)
"""

from __future__ import annotations

from typing import Any

from concord.client import HubClient
from concord.ledger.audit import ServedDiffers, difference, served_or_empty


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
        served = served_or_empty(hub, path)
        shown = {
            "revision": served.get("revision"),
            "files": {f["path"]: f["sha256"] for f in served.get("files", [])},
            "provenance": served.get("provenance"),
            "conformance": (served.get("conformance") or {}).get("passed"),
            "mirrored_from": served.get("mirrored_from"),
        }
        fields = ((field, value, content.get(field)) for field, value in shown.items())
        found = difference(path, index, fields)
        if found:
            raise ServedDiffers(**found)
