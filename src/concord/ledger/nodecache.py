"""The hub's cache of the tree's upper levels, so that a proof reads few stored nodes.

Every proof needs the nodes above its leaf: at 100,000 entries, 17 of them, and the upper
ones are shared by all proofs. Nodes at level ≥ 8 (one for every 256 leaves, the hashes that
tiles of level ≥ 1 are made of) are kept in memory per database, so a single proof reads only
its leaf and the seven nodes below level 8 from the database, in one statement.

A stored node never changes while the log only grows, so the cache needs no expiry; it must
only not outlive a log that was replaced (a test's fresh tables, or a rewrite that tampering
made). It remembers the tree it was filled from — size and frontier — and before each use:
- the same size: the frontier must be the same bytes;
- a larger size: the old frontier's subtrees must be the new tree's nodes at the same
  places (one read of at most log n nodes), which they are exactly when the new tree extends
  the old one;
- otherwise (a smaller size, e.g. a transaction that began before the cache's last append
  committed) the cache is left alone for that read.
Anything else empties it.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from concord.ledger import tree

LEVEL = 8  # nodes at this level and above are cached
MAX_NODES = 1 << 18  # some 40 MB; past it (a log of 67M entries), new nodes are not kept
HASH = 32

Read = Callable[[Iterable[tuple[int, int]]], dict[tuple[int, int], bytes]]


class NodeCache:
    def __init__(self) -> None:
        self.nodes: dict[tuple[int, int], bytes] = {}
        self.size = 0
        self.frontier = b""
        self.lock = threading.Lock()
        self.generation = 0  # counts emptyings: nodes got before and used after must match it

    def usable(self, size: int, frontier: bytes, read: Read) -> bool:
        """Whether the cache holds nodes of the tree of `size` with `frontier`, adopting that
        tree when it extends the cached one (see the module's text); `read` reads stored
        nodes from the database, bypassing the cache."""
        with self.lock:
            if size == self.size:
                if frontier == self.frontier:
                    return True
            elif size < self.size:
                return False
            else:
                old = tree.complete_subtrees(0, self.size)
                stored = read(old)
                expected = [self.frontier[i : i + HASH] for i in range(0, len(self.frontier), HASH)]
                if [stored.get(node) for node in old] == expected:
                    self.size, self.frontier = size, frontier
                    return True
            self.nodes = {}  # a new dict: readers holding the old one keep a consistent view
            self.generation += 1
            self.size, self.frontier = size, frontier
            return True

    def reset(self) -> None:
        """Forgets everything: for whoever replaces the log under a running hub by a shorter
        one (tests do), which the cache would otherwise leave alone until it outgrew it."""
        with self.lock:
            self.nodes = {}
            self.generation += 1
            self.size, self.frontier = 0, b""

    def get(self, wanted: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        nodes = self.nodes  # one lookup each: another thread may empty it meanwhile
        return {node: digest for node in wanted if (digest := nodes.get(node)) is not None}

    def keep(self, found: dict[tuple[int, int], bytes]) -> None:
        if len(self.nodes) >= MAX_NODES:
            return
        self.nodes.update((node, h) for node, h in found.items() if node[0] >= LEVEL)


_caches: weakref.WeakKeyDictionary[Any, NodeCache] = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()


def cache_for(bind: Any) -> NodeCache:
    """The cache of the database behind `bind` (an engine), made on first use."""
    with _caches_lock:
        cache = _caches.get(bind)
        if cache is None:
            cache = _caches[bind] = NodeCache()
        return cache
