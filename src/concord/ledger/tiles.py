"""The tlog-tiles layout (c2sp.org/tlog-tiles) of our tree, as pure functions.

A tile at level L, index N holds up to 256 consecutive hashes of the tree at height 8·L:
hash i is MTH(D[(N·256 + i)·256^L : (N·256 + i + 1)·256^L]), which is exactly the stored
complete subtree (8·L, N·256 + i) of `tree`. Level-0 tiles are the leaf hashes. A tile is
full at 256 hashes; the rightmost tiles of a tree are partial, with a width below 256 that
the tree's size fixes. Entry bundles are the entries of a level-0 tile, each prefixed by its
length as a big-endian uint16. Everything here is shared by the hub that serves tiles and the
auditor that reads them, so both sides agree on paths and widths by construction.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from concord.ledger import tree

HEIGHT = 8
WIDTH = 1 << HEIGHT  # hashes in a full tile
HASH = 32
MAX_ENTRY = 0xFFFF  # an entry bundle prefixes each entry with a uint16 length


@dataclass(frozen=True, slots=True)
class Tile:
    """Tile `index` of `level` with `width` hashes (`entries` for an entry bundle)."""

    level: int
    index: int
    width: int = WIDTH
    entries: bool = False

    @property
    def partial(self) -> bool:
        return self.width < WIDTH

    @property
    def path(self) -> str:
        """The spec's path below the log prefix: tile/1/x001/x234/067.p/17."""
        head = "tile/entries" if self.entries else f"tile/{self.level}"
        suffix = f".p/{self.width}" if self.partial else ""
        return f"{head}/{encode_index(self.index)}{suffix}"

    @property
    def first_leaf(self) -> int:
        """The entry index where this tile's span starts."""
        return self.index << (HEIGHT * (self.level + 1))


def encode_index(index: int) -> str:
    """1234067 → x001/x234/067: three-digit elements, all but the last prefixed by x."""
    digits = f"{index:d}"
    digits = digits.zfill(-(-len(digits) // 3) * 3)
    parts = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    return "/".join([*(f"x{p}" for p in parts[:-1]), parts[-1]])


_ELEMENT = re.compile(r"x[0-9]{3}")
_LAST = re.compile(r"[0-9]{3}")
_LEVEL = re.compile(r"0|[1-9][0-9]?")
_WIDTH = re.compile(r"[1-9][0-9]{0,2}")


def parse(path: str) -> Tile | None:
    """The tile a path below `tile/` names (`1/x001/067.p/5`, `entries/000`), or None if the
    path is not in the spec's exact form (no leading zeroes, no empty or oversized width)."""
    parts = path.split("/")
    width = WIDTH
    if len(parts) >= 3 and parts[-2].endswith(".p"):
        if not _WIDTH.fullmatch(parts[-1]) or int(parts[-1]) >= WIDTH:
            return None
        width = int(parts[-1])
        parts = [*parts[:-2], parts[-2][:-2]]
    if len(parts) < 2:
        return None
    head, *elements = parts
    entries = head == "entries"
    if not entries and (not _LEVEL.fullmatch(head) or int(head) > 63):
        return None
    if not _LAST.fullmatch(elements[-1]) or not all(_ELEMENT.fullmatch(e) for e in elements[:-1]):
        return None
    index = int("".join(e.lstrip("x") for e in elements))
    tile = Tile(0 if entries else int(head), index, width, entries)
    return tile if tile.path == f"tile/{path}" else None  # the canonical form only


def width_at(level: int, index: int, size: int) -> int:
    """How many hashes tile (level, index) has in a tree of `size` leaves: 256 if full, 0 if
    the tree does not reach it yet."""
    hashes = size >> (HEIGHT * level)  # complete subtrees at this tile level
    return max(0, min(WIDTH, hashes - index * WIDTH))


def tile_for(level: int, index: int, size: int) -> Tile:
    """The tile (full or partial) that a tree of `size` leaves has at (level, index)."""
    return Tile(level, index, width_at(level, index, size))


def tiles_at(level: int, size: int) -> list[Tile]:
    """Every tile of `level` that a tree of `size` leaves has, left to right."""
    count = -(-(size >> (HEIGHT * level)) // WIDTH)
    return [tile_for(level, i, size) for i in range(count)]


def levels(size: int) -> int:
    """How many tile levels a tree of `size` leaves has (0 for the empty tree)."""
    count = 0
    while size >> (HEIGHT * count):
        count += 1
    return count


def split_hashes(data: bytes) -> list[bytes]:
    return [data[i : i + HASH] for i in range(0, len(data), HASH)]


def bundle(entries: Sequence[bytes]) -> bytes:
    """Entries as a bundle: each prefixed by its length, a big-endian uint16."""
    return b"".join(struct.pack(">H", len(e)) + e for e in entries)


def unbundle(data: bytes) -> list[bytes] | None:
    """A bundle's entries, or None if it is not a well-formed bundle."""
    entries, at = [], 0
    while at < len(data):
        if at + 2 > len(data):
            return None
        (length,) = struct.unpack_from(">H", data, at)
        if at + 2 + length > len(data):
            return None
        entries.append(data[at + 2 : at + 2 + length])
        at += 2 + length
    return entries


# --- reading the tree back from tiles (what an auditor or monitor does) ---------------------

Fetch = Callable[[Tile], list[bytes]]


class TileNodes:
    """A `tree.Lookup` over the tiles of a tree of `size` leaves, fetching each tile once.

    Stored node (k, j) is a hash in tile level k // 8 when k is a multiple of 8; otherwise it
    is the Merkle hash of 2^(k mod 8) consecutive hashes of one tile of that level, computed
    here (and remembered). So `tree.range_hash`, `inclusion_ranges` and `consistency_ranges`
    give roots and proofs from tiles exactly as the hub gives them from its stored nodes."""

    def __init__(self, size: int, fetch: Fetch) -> None:
        self.size = size
        self.fetch = fetch
        self.tiles: dict[tuple[int, int], list[bytes]] = {}
        self.computed: dict[tuple[int, int], bytes] = {}

    def tile(self, level: int, index: int) -> list[bytes]:
        key = (level, index)
        if key not in self.tiles:
            self.tiles[key] = self.fetch(tile_for(level, index, self.size))
        return self.tiles[key]

    def __call__(self, level: int, index: int) -> bytes:
        tile_level, rest = divmod(level, HEIGHT)
        span = 1 << rest  # hashes of the tile level under this node
        first = index << rest  # position of the first one along its level
        hashes = self.tile(tile_level, first >> HEIGHT)
        at = first & (WIDTH - 1)
        if span == 1:
            return hashes[at]
        key = (level, index)
        if key not in self.computed:
            self.computed[key] = tree.mth(hashes[at : at + span])
        return self.computed[key]
