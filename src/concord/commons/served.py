"""The publications the hub serves, checked against its log: `concord audit --full`.

Each `commons.published` entry must be served by the revision's detail
(`GET /api/commons/repos/{kind}/{owner}/{name}/revisions/{sha}`) with the same files and
SHA-256s (and, in entries that record them, the same roots of their chunk lists), provenance,
conformance verdict and origin; the first that differs is named by its entry. (A mirror
verifies the bytes against these SHA-256s; a pull against the roots, or the SHA-256s where
an entry has no roots.)
"""

from __future__ import annotations

from typing import Any

from concord.client import HubClient
from concord.commons.disclosure import PREFIX
from concord.commons.roots import chunk_root
from concord.errors import RemoteError
from concord.ledger.audit import ServedDiffers, difference, served_or_empty


def check(hub: HubClient, bodies: list[dict[str, Any]]) -> None:
    """Raises `ServedDiffers` for the first publication that the hub serves otherwise.

    Publications of repositories that the log itself says were deleted since, or made private
    (their last change of visibility), are not served to an outside auditor, rightly: they
    are skipped, as are gated ones, which the hub shows only to their readers (403), and
    those logged while their repository was private: they name it by a commitment only
    (`disclosure.py`), and what they committed to is not served to outsiders."""
    withdrawn = _withdrawn(bodies)
    for index, body in enumerate(bodies):
        if body["kind"] != "commons.published" or index in withdrawn:
            continue
        content = body["content"]
        if str(content["repository"]).startswith(PREFIX):
            continue
        owner, _sep, name = str(content["repository"]).partition("/")
        path = (
            f"/api/commons/repos/{content['kind']}/{owner}/{name}/revisions/{content['revision']}"
        )
        try:
            served = served_or_empty(hub, path)
        except RemoteError as error:
            if error.status == 403:
                continue  # gated: served to its readers only
            raise
        shown = {
            "revision": served.get("revision"),
            "files": {f["path"]: f["sha256"] for f in served.get("files", [])},
            "provenance": served.get("provenance"),
            "conformance": (served.get("conformance") or {}).get("passed"),
            "mirrored_from": served.get("mirrored_from"),
        }
        if "chunk_roots" in content:
            # Entries since chunk roots were logged bind each file's root to its SHA-256: the
            # hub must serve the very roots that pulls check chunk lists against.
            # Both the roots it serves and the roots of the chunk lists it serves: a pull
            # trusts a list only as far as it matches the root, and the root only as far as
            # it is the logged one.
            served_files = served.get("files", [])
            shown["chunk_roots"] = {f["path"]: f.get("chunk_root") for f in served_files}
            shown["chunk_lists"] = {f["path"]: chunk_root(f["chunks"]) for f in served_files}
        logged = {**content, "chunk_lists": content.get("chunk_roots")}
        fields = ((field, value, logged.get(field)) for field, value in shown.items())
        found = difference(path, index, fields)
        if found:
            raise ServedDiffers(**found)


def _withdrawn(bodies: list[dict[str, Any]]) -> set[int]:
    """Indexes of publications that the log itself says are no longer served to outsiders: a
    deletion of their repository follows, or the repository is private at the log's end."""

    def key(body: dict[str, Any]) -> tuple[str, str]:
        content = body.get("content") or {}
        return str(content.get("kind", "")), str(content.get("repository", ""))

    private: dict[tuple[str, str], bool] = {}
    for body in bodies:
        if body["kind"] == "commons.visibility_changed":
            private[key(body)] = bool(body["content"].get("private"))
        elif body["kind"] == "commons.deleted":
            private.pop(key(body), None)
    withdrawn: set[int] = set()
    deleted_later: set[tuple[str, str]] = set()
    for index in range(len(bodies) - 1, -1, -1):
        body = bodies[index]
        if body["kind"] == "commons.deleted":
            deleted_later.add(key(body))
        elif body["kind"] == "commons.published" and (
            key(body) in deleted_later or private.get(key(body))
        ):
            withdrawn.add(index)
    return withdrawn
