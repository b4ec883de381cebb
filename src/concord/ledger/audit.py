"""Auditing a hub from outside: `concord audit URL`.

The auditor reads the log as a monitor does, from the hub's static tiles and entry bundles
(c2sp.org/tlog-tiles, served under /log), and trusts nothing the hub says without checking it:
1. the checkpoint's signature, against the hub key pinned on first use;
2. that the tiles rebuild the checkpoint's root — after which every hash read from them is
   bound to the signed root, and proofs are computed here from tiles rather than asked for;
3. that the checkpoint extends the one this auditor saw last time (a consistency proof built
   from the tiles) — a hub that shows different histories to different auditors is caught here;
4. that sampled entries (or, with `full`, all of them) from the entry bundles hash to their
   leaves in the tiles and are included in the checkpoint; with `full`, that the entries
   rebuild its root, that every tile above level 0 holds the roots of the full tiles below
   it, that no entry differs from the copy of the leaves kept at the last full audit — which
   is how a changed entry is named even when the hub recomputed its hashes — and that the
   proofs the hub serves on its JSON API (served state, fetched a thousand at a time) agree;
5. with `full`, that the state the hub serves (ballots, decisions, …) is what the log says:
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
from concord.ledger import checkpoint, tiles, tree

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
    public_key = str(hub.get("/api/log/head")["public_key"])
    pinned = remembered.get("public_key")
    if pinned and pinned != public_key:
        raise KeyChanged(old=pinned[:16], new=public_key[:16], state=str(state))
    note = hub.send("GET", "/log/checkpoint").text
    head = checkpoint.open_note(note, base64.b64decode(pinned or public_key))
    if head is None:
        raise _fail("the hub's checkpoint does not carry a valid signature by its key")
    nodes = tiles.TileNodes(head.size, lambda tile: _hashes(hub, tile))
    previous = remembered.get("head")
    notes: list[str] = []
    state.parent.mkdir(parents=True, exist_ok=True)
    if full:
        bodies: list[dict[str, Any]] = []
        checked = _check_all(hub, head, nodes, state.with_suffix(".leaves"), bodies)
    else:
        _check_root(head, nodes)
        checked = _check_sample(hub, head, nodes, sample)
    if previous:
        _check_consistency(nodes, int(previous["size"]), bytes.fromhex(previous["root"]), head)
        notes.append(f"consistent with the head of size {previous['size']} seen before")
    if full:
        _check_served_proofs(hub, head, nodes)
        for check in checks:
            check(hub, bodies)
    state.write_text(
        json.dumps(
            {
                "hub": url,
                "public_key": pinned or public_key,
                "head": {"size": head.size, "root": head.root.hex(), "checkpoint": note},
            },
            indent=1,
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


# --- reading tiles ---------------------------------------------------------------------------


def _get(hub: HubClient, tile: tiles.Tile) -> bytes:
    """A tile's bytes; when the hub cannot serve a level-0 tile or bundle, its indexed JSON
    entries name the entry that is missing, if one is."""
    try:
        return hub.send("GET", f"/log/{tile.path}").content
    except RemoteError as refused:
        if tile.level == 0:
            _name_missing(hub, tile)
        raise _fail(
            "the hub does not serve {path}: {answer}", path=tile.path, answer=str(refused)
        ) from refused


def _hashes(hub: HubClient, tile: tiles.Tile) -> list[bytes]:
    data = _get(hub, tile)
    if len(data) != tile.width * tiles.HASH:
        raise _fail(
            "the hub serves {path} with {got} items where its checkpoint needs {width}",
            path=tile.path,
            got=len(data) // tiles.HASH,
            width=tile.width,
        )
    return tiles.split_hashes(data)


def _bundle(hub: HubClient, index: int, size: int) -> list[bytes]:
    """The entries of level-0 tile `index`, from its entry bundle (or, for the rare bundle
    that cannot hold an entry of more than 64 KiB, from the JSON entries)."""
    tile = tiles.tile_for(0, index, size)
    tile = tiles.Tile(0, index, tile.width, entries=True)
    first = index * tiles.WIDTH
    try:
        entries = tiles.unbundle(hub.send("GET", f"/log/{tile.path}").content)
    except RemoteError as refused:
        if refused.code != "log.entry_too_large":
            _name_missing(hub, tile)
            raise _fail(
                "the hub does not serve {path}: {answer}", path=tile.path, answer=str(refused)
            ) from refused
        page = hub.get("/api/log/entries", params={"start": first, "end": first + tile.width})
        entries = [str(e["body"]).encode("utf-8") for e in page]
    if entries is None or len(entries) != tile.width:
        raise _fail(
            "the hub serves {path} with {got} items where its checkpoint needs {width}",
            path=tile.path,
            got=len(entries or []),
            width=tile.width,
        )
    return entries


def _name_missing(hub: HubClient, tile: tiles.Tile) -> None:
    """Raises naming the first entry of the tile's span that the hub's JSON API lacks."""
    first = tile.index * tiles.WIDTH
    page = hub.get("/api/log/entries", params={"start": first, "end": first + tile.width})
    for offset, entry in enumerate(page):
        _entry_leaf(entry, first + offset)
    if len(page) < tile.width:
        raise _fail("entry {index} is missing", index=first + len(page))


# --- the checks ------------------------------------------------------------------------------


def _check_root(head: checkpoint.Checkpoint, nodes: tiles.TileNodes) -> None:
    if tree.range_hash(0, head.size, nodes) != head.root:
        raise _fail(
            "the hub's tiles do not rebuild the root of its checkpoint of size {size}",
            size=head.size,
        )


def _check_consistency(
    nodes: tiles.TileNodes, old_size: int, old_root: bytes, new: checkpoint.Checkpoint
) -> None:
    if new.size < old_size:
        raise _fail(
            "the log shrank from {old} to {new} entries since the last audit",
            old=old_size,
            new=new.size,
        )
    if new.size == old_size:
        if new.root != old_root:
            raise _fail(
                "two different roots were signed for size {size}: the log was forked or rewritten",
                size=new.size,
            )
        return
    if old_size == 0:
        return
    ranges = tree.consistency_ranges(old_size, new.size)
    proof = [tree.range_hash(start, size, nodes) for start, size in ranges]
    if not tree.verify_consistency(old_size, new.size, old_root, new.root, proof):
        raise _fail(
            "the head of size {new} does not extend the head of size {old} seen "
            "before: the log was forked or rewritten",
            new=new.size,
            old=old_size,
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


def _leaf_of(body: bytes, index: int, nodes: tiles.TileNodes) -> bytes:
    """The leaf hash of the entry `body` at `index`, which its level-0 tile must hold."""
    leaf = tree.leaf_hash(body)
    if leaf != nodes(0, index):
        raise _fail("entry {index} does not hash to its leaf: its content was changed", index=index)
    return leaf


def _not_included(index: int, size: int) -> AuditFailed:
    return _fail(
        "entry {index} is not included in the signed head of size {size}", index=index, size=size
    )


def _check_sample(
    hub: HubClient, head: checkpoint.Checkpoint, nodes: tiles.TileNodes, sample: int
) -> int:
    """Sampled entries from their bundles, each proved included by a path built from tiles."""
    if head.size == 0:
        return 0
    picks = sorted(set(random.sample(range(head.size), min(sample, head.size))) | {head.size - 1})
    bundles: dict[int, list[bytes]] = {}
    for index in picks:
        tile = index >> tiles.HEIGHT
        if tile not in bundles:
            bundles[tile] = _bundle(hub, tile, head.size)
        leaf = _leaf_of(bundles[tile][index % tiles.WIDTH], index, nodes)
        path = [tree.range_hash(s, n, nodes) for s, n in tree.inclusion_ranges(index, head.size)]
        if not tree.verify_inclusion(leaf, index, head.size, path, head.root):
            raise _not_included(index, head.size)
    return len(picks)


def _check_all(
    hub: HubClient,
    head: checkpoint.Checkpoint,
    nodes: tiles.TileNodes,
    remembered: Path,
    bodies: list[dict[str, Any]] | None = None,
) -> int:
    """Every entry against its tile leaf and last time's leaf, then the root from them and
    every upper tile from the tiles below. Parsed bodies are added to `bodies`."""
    known = remembered.read_bytes() if remembered.exists() else b""
    leaves: list[bytes] = []
    for tile in tiles.tiles_at(0, head.size):
        for body in _bundle(hub, tile.index, head.size):
            index = len(leaves)
            leaf = _leaf_of(body, index, nodes)
            old = known[index * 32 : index * 32 + 32]
            if old and old != leaf:
                raise _fail("entry {index} was changed since your last full audit", index=index)
            leaves.append(leaf)
            if bodies is not None:
                bodies.append(json.loads(body))
    _size, root = tree.root_from_leaves(leaves)
    if root != head.root:
        raise _fail("the entries do not rebuild the signed root of size {size}", size=head.size)
    for level in range(1, tiles.levels(head.size)):
        for tile in tiles.tiles_at(level, head.size):
            for offset, digest in enumerate(nodes.tile(level, tile.index)):
                if tree.mth(nodes.tile(level - 1, tile.index * tiles.WIDTH + offset)) != digest:
                    raise _fail("tile {path} does not match the tiles below it", path=tile.path)
    _check_root(head, nodes)
    remembered.write_bytes(b"".join(leaves))
    return len(leaves)


def _check_served_proofs(
    hub: HubClient, head: checkpoint.Checkpoint, nodes: tiles.TileNodes
) -> None:
    """The inclusion proofs the hub serves as JSON (what its other clients rely on) against
    the checkpoint, a page of a thousand at a time: a stored node changed under the hub
    shows here, in the proofs of the entries beside it, though no tile holds it."""
    for start in range(0, head.size, PAGE):
        end = min(start + PAGE, head.size)
        paths = hub.get(
            "/api/log/proof/inclusion-range", params={"start": start, "end": end, "size": head.size}
        )["audit_paths"]
        for offset, path in enumerate(paths):
            index = start + offset
            proof = [bytes.fromhex(p) for p in path]
            if not tree.verify_inclusion(nodes(0, index), index, head.size, proof, head.root):
                raise _not_included(index, head.size)
