"""Auditing a hub from outside: `concord audit URL`.

The auditor trusts nothing the hub says without checking it:
1. the latest head's signature, against the hub key pinned on first use;
2. that the head extends the head this auditor saw last time (consistency proof) — a hub
   that shows different histories to different auditors is caught here;
3. that sampled entries (or, with `full`, all of them) hash to their leaves and are included
   in the head (inclusion proofs); with `full`, that the entries rebuild the head's root and
   that no entry differs from the copy of the leaves kept at the last full audit — which is
   how a changed entry is named even when the hub recomputed its hashes.
4. with `full`, that the state the hub serves (ballots, decisions, …) is what the log says:
   each domain that serves logged state provides a `Check` (its module `served.py`, found by
   the command like routes are) that reads the entries and the hub's API and raises
   `ServedDiffers` naming the first difference. The ledger itself knows no domain.
It stops at the first disagreement and names it.
"""

from __future__ import annotations

import base64
import json
import os
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from concord.client import HubClient
from concord.errors import N_, Conflict, RemoteError
from concord.ledger import tree
from concord.ledger.log import Head, verify_head

PAGE = 1000


class AuditFailed(Conflict):
    code = "audit.failed"
    message = N_("Audit failed: {reason}")


class KeyChanged(Conflict):
    code = "audit.key_changed"
    message = N_(
        "The hub's signing key changed since your last audit (was {old}, now {new}). "
        "If the secretariat announced a new key, delete {state} and audit again."
    )


class ServedDiffers(Conflict):
    code = "audit.served_differs"
    message = N_(
        "The hub serves {what} that its log does not say: entry {index}, field {field}: "
        "served {served}, logged {logged}."
    )


# A domain's check of served state: the hub, and the bodies of every entry in log order.
Check = Callable[[HubClient, list[dict[str, Any]]], None]


def served_or_empty(hub: HubClient, path: str) -> dict[str, Any]:
    """What the hub serves at `path`; `{}` when it serves nothing there (404), which the
    caller then reports as a logged thing the hub does not serve."""
    try:
        return dict(hub.get(path))
    except RemoteError as error:
        if error.status != 404:
            raise
        return {}


def difference(
    what: str, index: int, fields: Iterable[tuple[str, Any, Any]]
) -> dict[str, Any] | None:
    """The first of `fields` (name, served, logged) whose values differ, as the parameters of
    `ServedDiffers`; None when every field agrees."""
    for name, served, logged in fields:
        if served != logged:
            return {
                "what": what,
                "index": index,
                "field": name,
                "served": shown(served),
                "logged": shown(logged),
            }
    return None


def shown(value: Any) -> str:
    """A value as a short text for a message."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 120 else text[:117] + "…"


@dataclass
class Report:
    hub: str
    size: int
    root: str
    checked: int
    full: bool
    previous_size: int | None
    notes: list[str] = field(default_factory=list)


def default_state(url: str) -> Path:
    host = urlparse(url).netloc.replace(":", "_") or "hub"
    base = Path(os.environ.get("CONCORD_AUDIT_DIR", Path.home() / ".concord" / "audit"))
    return base / f"{host}.json"


def _head_of(data: dict[str, Any]) -> Head:
    return Head(
        int(data["size"]),
        bytes.fromhex(data["root"]),
        str(data["timestamp"]),
        str(data["signature"]),
    )


def _fail(reason: str, **params: Any) -> AuditFailed:
    """An audit failure whose message is `reason` with its parameters. The catalogue tool
    extracts `_fail("…")` like `N_("…")`, so every reason is translated when shown."""
    return AuditFailed(reason, **params)


def audit(
    url: str,
    *,
    state: Path | None = None,
    full: bool = False,
    sample: int = 64,
    client: HubClient | None = None,
    checks: Sequence[Check] = (),
) -> Report:
    """Audits the hub at `url`; raises a coded error naming the first disagreement. With
    `full`, each of `checks` then compares what the hub serves with the entries."""
    state = state or default_state(url)
    hub = client or HubClient(url)
    remembered: dict[str, Any] = json.loads(state.read_text()) if state.exists() else {}
    data = hub.get("/api/log/head")
    head = _head_of(data)
    public_key = str(data["public_key"])
    pinned = remembered.get("public_key")
    if pinned and pinned != public_key:
        raise KeyChanged(old=pinned[:16], new=public_key[:16], state=str(state))
    if not verify_head(base64.b64decode(pinned or public_key), head):
        raise _fail("the signature of the head of size {size} is not valid", size=head.size)
    previous = remembered.get("head")
    notes: list[str] = []
    if previous:
        _check_consistency(hub, _head_of(previous), head)
        notes.append(f"consistent with the head of size {previous['size']} seen before")
    state.parent.mkdir(parents=True, exist_ok=True)
    leaves_file = state.with_suffix(".leaves")
    if full:
        bodies: list[dict[str, Any]] = []
        checked = _check_all(hub, head, leaves_file, bodies)
        for check in checks:
            check(hub, bodies)
    else:
        checked = _check_sample(hub, head, sample)
    state.write_text(
        json.dumps(
            {"hub": url, "public_key": pinned or public_key, "head": head.to_json()}, indent=1
        )
    )
    return Report(
        url,
        head.size,
        head.root.hex(),
        checked,
        full,
        int(previous["size"]) if previous else None,
        notes,
    )


def _check_consistency(hub: HubClient, old: Head, new: Head) -> None:
    if new.size < old.size:
        raise _fail(
            "the log shrank from {old} to {new} entries since the last audit",
            old=old.size,
            new=new.size,
        )
    if new.size == old.size:
        if new.root != old.root:
            raise _fail(
                "two different roots were signed for size {size}: the log was forked or rewritten",
                size=new.size,
            )
        return
    if old.size == 0:
        return
    answer = hub.get("/api/log/proof/consistency", params={"first": old.size, "second": new.size})
    proof = [bytes.fromhex(p) for p in answer["proof"]]
    if not tree.verify_consistency(old.size, new.size, old.root, new.root, proof):
        raise _fail(
            "the head of size {new} does not extend the head of size {old} seen "
            "before: the log was forked or rewritten",
            new=new.size,
            old=old.size,
        )


def _entry_leaf(entry: dict[str, Any], expected_index: int) -> bytes:
    if int(entry["index"]) != expected_index:
        raise _fail(
            "entry {index} is missing (the hub returned entry {got} in its place)",
            index=expected_index,
            got=entry["index"],
        )
    leaf = tree.leaf_hash(str(entry["body"]).encode("utf-8"))
    if leaf.hex() != entry["leaf_hash"]:
        raise _fail(
            "entry {index} does not hash to its leaf: its content was changed", index=expected_index
        )
    return leaf


def _check_inclusion(hub: HubClient, head: Head, index: int, leaf: bytes) -> None:
    answer = hub.get("/api/log/proof/inclusion", params={"index": index, "size": head.size})
    path = [bytes.fromhex(p) for p in answer["audit_path"]]
    if not tree.verify_inclusion(leaf, index, head.size, path, head.root):
        raise _fail(
            "entry {index} is not included in the signed head of size {size}",
            index=index,
            size=head.size,
        )


def _check_sample(hub: HubClient, head: Head, sample: int) -> int:
    if head.size == 0:
        return 0
    picks = sorted(set(random.sample(range(head.size), min(sample, head.size))) | {head.size - 1})
    for index in picks:
        entry = hub.get(f"/api/log/entries/{index}")
        _check_inclusion(hub, head, index, _entry_leaf(entry, index))
    return len(picks)


def _check_all(
    hub: HubClient, head: Head, remembered: Path, bodies: list[dict[str, Any]] | None = None
) -> int:
    """Every entry: its hash, its inclusion proof, the same leaf as last time, the root.
    Their parsed bodies are added to `bodies`, for the domains' checks."""
    known = remembered.read_bytes() if remembered.exists() else b""
    leaves: list[bytes] = []
    for start in range(0, head.size, PAGE):
        end = min(start + PAGE, head.size)
        page = hub.get("/api/log/entries", params={"start": start, "end": end})
        expected = start
        for entry in page:
            leaf = _entry_leaf(entry, expected)
            old = known[expected * 32 : expected * 32 + 32]
            if old and old != leaf:
                raise _fail("entry {index} was changed since your last full audit", index=expected)
            leaves.append(leaf)
            if bodies is not None:
                bodies.append(json.loads(str(entry["body"])))
            expected += 1
        if expected != end:
            raise _fail("entry {index} is missing", index=expected)
        paths = hub.get(
            "/api/log/proof/inclusion-range", params={"start": start, "end": end, "size": head.size}
        )["audit_paths"]
        for offset, path in enumerate(paths):
            index = start + offset
            if not tree.verify_inclusion(
                leaves[index], index, head.size, [bytes.fromhex(p) for p in path], head.root
            ):
                raise _fail(
                    "entry {index} is not included in the signed head of size {size}",
                    index=index,
                    size=head.size,
                )
    _size, root = tree.root_from_leaves(leaves)
    if root != head.root:
        raise _fail("the entries do not rebuild the signed root of size {size}", size=head.size)
    remembered.write_bytes(b"".join(leaves))
    return len(leaves)
