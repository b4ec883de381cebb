"""The Merkle tree of RFC 9162 §2.1, as pure functions.

Notation follows the RFC: D[n] is the list of n entries, MTH the Merkle Tree Hash, PATH the
inclusion proof, PROOF the consistency proof. Every subtree the RFC's recursion visits is
*aligned*: it covers leaves [start, start + 2^level) with start a multiple of 2^level. Such a
complete subtree is stored once, keyed by (level, start >> level), so a proof is a handful of
lookups. Functions here take a `lookup(level, index) -> hash` for those stored nodes; the
plain recursive versions (`mth`, `path`, `proof`) over a list of leaf hashes are kept beside
them for tests to compare against.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

Hash = bytes
Lookup = Callable[[int, int], Hash]
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(entry: bytes) -> Hash:
    """SHA-256(0x00 ‖ entry)."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: Hash, right: Hash) -> Hash:
    """SHA-256(0x01 ‖ left ‖ right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def split(n: int) -> int:
    """k, the largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


# --- plain versions over a list of leaf hashes (the RFC's text, read top to bottom) ---------


def mth(leaves: Sequence[Hash]) -> Hash:
    """MTH(D[n])."""
    n = len(leaves)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaves[0]
    k = split(n)
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def path(m: int, leaves: Sequence[Hash]) -> list[Hash]:
    """PATH(m, D[n]): the inclusion proof of leaf m."""
    n = len(leaves)
    if n <= 1:
        return []
    k = split(n)
    if m < k:
        return [*path(m, leaves[:k]), mth(leaves[k:])]
    return [*path(m - k, leaves[k:]), mth(leaves[:k])]


def proof(m: int, leaves: Sequence[Hash]) -> list[Hash]:
    """PROOF(m, D[n]): the consistency proof from size m to size n (empty for m = 0)."""
    return _subproof(m, leaves, True) if m > 0 else []


def _subproof(m: int, leaves: Sequence[Hash], complete: bool) -> list[Hash]:
    n = len(leaves)
    if m == n:
        return [] if complete else [mth(leaves)]
    k = split(n)
    if m <= k:
        return [*_subproof(m, leaves[:k], complete), mth(leaves[k:])]
    return [*_subproof(m - k, leaves[k:], False), mth(leaves[:k])]


# --- the same over stored complete subtrees -------------------------------------------------


def complete_subtrees(start: int, size: int) -> list[tuple[int, int]]:
    """(level, index) of the aligned complete subtrees whose hashes make MTH(D[start:start+size]),
    left to right, following the RFC's split."""
    nodes = []
    while size > 0:
        k = size if size & (size - 1) == 0 else split(size)
        level = k.bit_length() - 1
        nodes.append((level, start >> level))
        start, size = start + k, size - k
    return nodes


def range_hash(start: int, size: int, lookup: Lookup) -> Hash:
    """MTH(D[start:start+size]) from stored nodes."""
    if size == 0:
        return EMPTY_ROOT
    if size & (size - 1) == 0:  # most proof elements are one complete subtree
        level = size.bit_length() - 1
        return lookup(level, start >> level)
    hashes = [lookup(level, index) for level, index in complete_subtrees(start, size)]
    # The RFC's split puts the larger complete subtree on the left: fold from the right.
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


def inclusion_ranges(m: int, n: int) -> list[tuple[int, int]]:
    """The (start, size) of each subtree whose hash PATH(m, D[n]) lists, leaf upwards.

    The RFC's recursion, unrolled into bit operations (hypothesis checks it against the
    recursive PATH): at each level the sibling of m's subtree is listed if it starts inside
    the tree; it is complete unless it reaches past the last leaf."""
    ranges: list[tuple[int, int]] = []
    for level in range((n - 1).bit_length()):
        start = ((m >> level) ^ 1) << level
        if start < n:
            size = 1 << level
            ranges.append((start, size if start + size <= n else n - start))
    return ranges


def consistency_ranges(m: int, n: int) -> list[tuple[int, int]]:
    """The (start, size) of each subtree whose hash PROOF(m, D[n]) lists, in order."""
    ranges: list[tuple[int, int]] = []
    if m == 0:
        return ranges
    start, complete = 0, True
    while m != n:
        k = split(n)
        if m <= k:
            ranges.append((start + k, n - k))
            n = k
        else:
            ranges.append((start, k))
            m, start, n, complete = m - k, start + k, n - k, False
    if not complete:
        ranges.append((start, n))
    return list(reversed(ranges))


def needed_nodes(ranges: Iterable[tuple[int, int]]) -> set[tuple[int, int]]:
    """Every stored node that `range_hash` will read for these ranges (to fetch them at once)."""
    return {node for start, size in ranges for node in complete_subtrees(start, size)}


# --- verification (RFC 9162 §2.1.3.2 and §2.1.4.2), what an auditor runs --------------------


def verify_inclusion(
    leaf: Hash, index: int, size: int, audit_path: Sequence[Hash], root: Hash
) -> bool:
    """True if `audit_path` proves leaf `index` of a tree of `size` leaves with `root`."""
    if index >= size or index < 0:
        return False
    fn, sn = index, size - 1
    r = leaf
    for p in audit_path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    first: int, second: int, first_root: Hash, second_root: Hash, consistency: Sequence[Hash]
) -> bool:
    """True if `consistency` proves the tree of size `second` extends the one of size `first`."""
    if first < 0 or second < first:
        return False
    if first == second:
        return not consistency and first_root == second_root
    if first == 0:
        return not consistency  # every tree extends the empty one
    items = list(consistency)
    if first & (first - 1) == 0:  # a power of two: the first root is the first node
        items.insert(0, first_root)
    if not items:
        return False
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = items[0]
    for c in items[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root


def root_from_leaves(leaves: Iterable[Hash]) -> tuple[int, Hash]:
    """(size, MTH) of a stream of leaf hashes in O(log n) memory, as a full audit needs."""
    frontier: list[Hash] = []  # complete subtree roots, largest first
    sizes: list[int] = []
    n = 0
    for leaf in leaves:
        frontier.append(leaf)
        sizes.append(1)
        while len(sizes) > 1 and sizes[-1] == sizes[-2]:
            right, left = frontier.pop(), frontier.pop()
            sizes[-2:] = [sizes[-1] * 2]
            frontier.append(node_hash(left, right))
        n += 1
    if not frontier:
        return 0, EMPTY_ROOT
    result = frontier[-1]
    for left in reversed(frontier[:-1]):
        result = node_hash(left, result)
    return n, result
