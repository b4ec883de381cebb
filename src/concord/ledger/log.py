"""The log as stored: appending in the caller's transaction, roots, proofs and signed heads.

Other domains call `append(session, kind, content, member_id=…)` in the same transaction as
the act it records, so the act and its entry commit together or not at all. Appends lock the
single state row, which orders them across hub processes; each append writes its entry and
the complete subtrees it closes (one on average), so proofs later read O(log n) nodes.
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from concord.db import utcnow
from concord.errors import N_, Conflict, Invalid, NotFound, NulCharacter
from concord.ledger import nodecache, tiles, tree
from concord.ledger.tables import LogEntry, LogState, SignedHead

HASH = 32


class BadTreeSize(Invalid):
    code = "log.bad_size"
    message = N_("The log has {size} entries; {asked} is not a size or index it can prove.")


class BadProofRange(Invalid):
    code = "log.bad_range"
    message = N_(
        "A consistency proof needs 0 < first ≤ second ≤ {size}; got first={first}, second={second}."
    )


class BadEntryRange(Invalid):
    code = "log.bad_entry_range"
    message = N_("Entries are asked for as start ≤ index < end; got start={start}, end={end}.")


class NoTile(NotFound):
    code = "log.no_tile"
    message = N_("The log has {size} entries: it has no tile {path}.")


class EntryTooLarge(Conflict):
    code = "log.entry_too_large"
    message = N_(
        "Entry {index} has {length} bytes, more than an entry bundle can hold (65,535); "
        "read it from /api/log/entries."
    )


class UnknownEntry(NotFound):
    code = "log.unknown_entry"
    message = N_("The log has no entry {index}.")


def canonical_json(value: Any) -> bytes:
    """Sorted keys, UTF-8, no whitespace: the same bytes for the same value everywhere."""
    return json.dumps(
        value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    ).encode("utf-8")


leaf_hash = tree.leaf_hash


def entry_body(
    kind: str, content: dict[str, Any], member_id: int | None, at: datetime
) -> dict[str, Any]:
    """The logged document."""
    return {
        "kind": kind,
        "time": at.isoformat().replace("+00:00", "Z"),
        "member": member_id,
        "content": content,
    }


def _locked_state(session: Session) -> LogState:
    state = session.scalars(select(LogState).where(LogState.id == 1).with_for_update()).first()
    if state is None:
        state = LogState(id=1, size=0, frontier=b"")
        session.add(state)
        try:
            with session.begin_nested():
                session.flush()
        except IntegrityError:  # another process created it first
            state = session.scalars(
                select(LogState).where(LogState.id == 1).with_for_update()
            ).one()
    return state


def _grow(frontier: list[bytes], size: int, leaf: bytes) -> list[tuple[int, int, bytes]]:
    """Adds leaf number `size` to the frontier in place; returns the nodes it completes
    as (level, index, hash)."""
    nodes = []
    carry, level = leaf, 0
    while size >> level & 1:
        carry = tree.node_hash(frontier.pop(), carry)
        level += 1
        nodes.append((level, size >> level, carry))
    frontier.append(carry)
    return nodes


def _split_frontier(raw: bytes) -> list[bytes]:
    return [raw[i : i + HASH] for i in range(0, len(raw), HASH)]


def append(
    session: Session, kind: str, content: dict[str, Any], member_id: int | None = None
) -> LogEntry:
    """Appends one entry in the caller's transaction and returns it (with its index)."""
    return append_many(session, [(kind, content, member_id)])[0]


def append_many(
    session: Session, items: Sequence[tuple[str, dict[str, Any], int | None]]
) -> list[LogEntry]:
    """Appends several entries in one go (one lock, bulk inserts) in the caller's transaction."""
    at = utcnow()
    prepared = [(kind, canonical_json(content), member_id) for kind, content, member_id in items]
    return [
        LogEntry(
            index=row.index,
            kind=kind,
            member_id=member_id,
            created_at=at,
            body=row.body,
            leaf_hash=row.leaf_hash,
        )
        for row, (kind, _content, member_id) in zip(
            append_prepared(session, prepared, at), prepared, strict=True
        )
    ]


@dataclass(frozen=True, slots=True)
class Appended:
    """Where an entry went: its index, its bytes and their leaf hash."""

    index: int
    body: bytes
    leaf_hash: bytes


Prepared = tuple[str, bytes, int | None]  # kind, canonical JSON of the content, member


def check_kind(kind: str) -> None:
    """Refuses a kind the entries table cannot hold the same way on every database (the
    driver-level inserts below do not pass through `concord.db`'s NUL check)."""
    if kind in _good_kinds:
        return
    if "\x00" in kind:
        raise NulCharacter()
    if not 0 < len(kind) <= KIND_LENGTH:
        raise ValueError(f"a log entry kind has 1 to {KIND_LENGTH} characters: {kind[:80]!r}")
    if len(_good_kinds) < 4096:  # kinds are few; checked once each
        _good_kinds.add(kind)


_good_kinds: set[str] = set()


KIND_LENGTH = 64


@functools.lru_cache(maxsize=1024)
def _kind_json(kind: str) -> bytes:
    return canonical_json(kind)  # kinds are few; each serialised once


def entry_bytes(kind: str, content_json: bytes, member_id: int | None, stamp: str) -> bytes:
    """`canonical_json(entry_body(...))` from the content's canonical JSON, by concatenation:
    the body's keys in sorted order are content, kind, member, time."""
    return b"".join(
        (
            b'{"content":',
            content_json,
            b',"kind":',
            _kind_json(kind),
            b',"member":',
            b"null" if member_id is None else str(int(member_id)).encode(),
            b',"time":"',
            stamp.encode(),
            b'"}',
        )
    )


def append_prepared(
    session: Session, items: Sequence[Prepared], at: datetime | None = None
) -> list[Appended]:
    """Appends entries whose content is already canonical JSON, in the caller's transaction:
    one lock of the state row, then each table written by one driver-level statement (the
    ORM's per-row bookkeeping cost several times what the database does)."""
    for kind, _content, _member in items:
        check_kind(kind)
    state = _locked_state(session)
    frontier = _split_frontier(state.frontier)
    size = state.size
    at = at or utcnow()
    stamp = at.isoformat().replace("+00:00", "Z")
    connection = session.connection()
    created = _bind_time(connection.dialect, at)
    appended: list[Appended] = []
    rows: list[tuple[int, str, int | None, Any, bytes, bytes]] = []
    nodes: list[tuple[int, int, bytes]] = []
    for kind, content_json, member_id in items:
        body = entry_bytes(kind, content_json, member_id, stamp)
        leaf = tree.leaf_hash(body)
        appended.append(Appended(size, body, leaf))
        rows.append((size, kind, member_id, created, body, leaf))
        nodes += _grow(frontier, size, leaf)
        size += 1
    cursor = connection.connection.cursor()
    try:
        if connection.dialect.name == "sqlite":
            cursor.executemany(INSERT_ENTRIES_SQLITE, rows)
            if nodes:
                cursor.executemany(INSERT_NODES_SQLITE, nodes)
        else:
            # One statement each over arrays: a single round trip however many rows.
            cursor.execute(INSERT_ENTRIES_PG, [list(column) for column in zip(*rows, strict=True)])
            if nodes:
                cursor.execute(INSERT_NODES_PG, [list(c) for c in zip(*nodes, strict=True)])
    finally:
        cursor.close()
    state.size = size
    state.frontier = b"".join(frontier)
    session.flush()
    return appended


def _bind_time(dialect: Any, at: datetime) -> Any:
    """`at` as the driver is given it for `created_at` (SQLite stores a string)."""
    process = LogEntry.__table__.c.created_at.type._cached_bind_processor(dialect)
    return process(at) if process else at


INSERT_ENTRIES_SQLITE = (
    "INSERT INTO ledger_entries (idx, kind, member_id, created_at, body, leaf_hash) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
INSERT_NODES_SQLITE = "INSERT INTO ledger_nodes (level, idx, hash) VALUES (?, ?, ?)"
INSERT_ENTRIES_PG = (
    "INSERT INTO ledger_entries (idx, kind, member_id, created_at, body, leaf_hash) "
    "SELECT * FROM unnest(%s::bigint[], %s::varchar[], %s::integer[], %s::timestamptz[], "
    "%s::bytea[], %s::bytea[])"
)
INSERT_NODES_PG = (
    "INSERT INTO ledger_nodes (level, idx, hash) "
    "SELECT * FROM unnest(%s::smallint[], %s::bigint[], %s::bytea[])"
)


def state(session: Session) -> tuple[int, bytes]:
    """(size, frontier) as this transaction sees them, by one plain statement: the ORM's
    `get` costs a proof more than all its node reads together."""
    rows = _run(session, STATE_SQL, ())
    return (int(rows[0][0]), bytes(rows[0][1])) if rows else (0, b"")


def _run(session: Session, sql: str, params: Sequence[Any]) -> list[Any]:
    """Rows of one statement run on the DBAPI cursor of the session's connection (in its
    transaction): for the small reads of a proof, SQLAlchemy's result machinery costs more
    than the database does."""
    cursor = session.connection().connection.cursor()
    try:
        cursor.execute(sql, params)
        return list(cursor.fetchall())
    finally:
        cursor.close()


STATE_SQL = "SELECT size, frontier FROM ledger_state WHERE id = 1"


def size(session: Session) -> int:
    """Number of entries committed (as this transaction sees them)."""
    return state(session)[0]


def current_root(session: Session) -> tuple[int, bytes]:
    """(size, root) of the whole log, from the frontier alone."""
    state = session.get(LogState, 1)
    if state is None or state.size == 0:
        return 0, tree.EMPTY_ROOT
    frontier = _split_frontier(state.frontier)
    root = frontier[-1]
    for left in reversed(frontier[:-1]):
        root = tree.node_hash(left, root)
    return state.size, root


class Nodes:
    """Stored subtree hashes fetched in bulk (see `fetch` for how many statements), the upper
    levels from the hub's cache of them (`nodecache`)."""

    def __init__(self, session: Session, seen: tuple[int, bytes] | None = None) -> None:
        self.session = session
        self.known: dict[tuple[int, int], bytes] = {}
        tree_size, frontier = seen or state(session)
        cache = nodecache.cache_for(session.get_bind())
        self.cache = cache if cache.usable(tree_size, frontier, self.read) else None

    def fetch(self, coords: Iterable[tuple[int, int]]) -> None:
        wanted = [c for c in set(coords) if c not in self.known]
        if self.cache is not None:
            self.known.update(self.cache.get(wanted))
            wanted = [c for c in wanted if c not in self.known]
        found = self.read(wanted)
        self.known.update(found)
        if self.cache is not None:
            self.cache.keep(found)

    def read(self, coords: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """These nodes as stored, without the cache (those missing are left out)."""
        return read_nodes(self.session, coords)

    def __call__(self, level: int, index: int) -> bytes:
        if (level, index) not in self.known:
            self.fetch([(level, index)])
        try:
            return self.known[(level, index)]
        except KeyError:
            raise UnknownEntry(index=index << level) from None


def read_nodes(session: Session, coords: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    """These nodes as stored, without the cache (those missing are left out)."""
    wanted = list(coords)
    found: dict[tuple[int, int], bytes] = {}
    if not wanted:
        return found
    connection = session.connection()
    sqlite = connection.dialect.name == "sqlite"
    if sqlite and len(wanted) <= FEW_NODES_SQLITE:
        # A single proof: every node in one statement of primary-key lookups, since on
        # SQLite each statement costs more Python than its lookups cost SQLite.
        sql = " UNION ALL ".join(NODE_SQLITE if level else LEAF_SQLITE for level, _index in wanted)
        params = tuple(
            v for level, index in wanted for v in ((level, index) if level else (index,))
        )
        for level, index, digest in _run(session, sql, params):
            found[(level, index)] = bytes(digest)
        return found
    leaves = [index for level, index in wanted if level == 0]
    inner = [[level, index] for level, index in wanted if level > 0]
    if not sqlite and len(wanted) <= FEW_NODES:
        # A proof or a few: leaves and inner nodes in one round trip.
        pairs = ([level for level, _i in inner], [index for _l, index in inner])
        for level, index, digest in _run(session, FEW_PG, (leaves, *pairs)):
            found[(level, index)] = bytes(digest)
        return found
    if leaves:
        sql, values = (LEAVES_SQLITE, json.dumps(leaves)) if sqlite else (LEAVES_PG, leaves)
        for index, digest in _run(session, sql, (values,)):
            found[(0, index)] = bytes(digest)
    if not sqlite and 0 < len(inner) <= FEW_NODES:
        # A proof or a few: every inner node in one round trip.
        pairs = ([level for level, _i in inner], [index for _l, index in inner])
        for level, index, digest in _run(session, NODES_PG, pairs):
            found[(level, index)] = bytes(digest)
        return found
    # Many (or SQLite, in process, where statements cost no round trip): one statement
    # per level, an index scan of the key, measured faster than one join on pairs.
    by_level: dict[int, list[int]] = {}
    for level, index in inner:
        by_level.setdefault(level, []).append(index)
    for level, indices in by_level.items():
        by_index = (level, json.dumps(indices) if sqlite else indices)
        for index, digest in _run(
            session, NODES_LEVEL_SQLITE if sqlite else NODES_LEVEL_PG, by_index
        ):
            found[(level, index)] = bytes(digest)
    return found


# Plain driver statements with the wanted nodes as one parameter (a JSON array for SQLite,
# arrays for PostgreSQL): on PostgreSQL a single proof costs two round trips whatever its
# depth, and a batch of a thousand proofs (some 10,000 nodes) is not slowed by building and
# compiling ORM statements, which cost more than the reads. Each looks nodes up by primary key
# (a row-value IN over (level, idx) would make SQLite scan).
LEAVES_SQLITE = (
    "SELECT idx, leaf_hash FROM ledger_entries WHERE idx IN (SELECT value FROM json_each(?))"
)
LEAVES_PG = "SELECT idx, leaf_hash FROM ledger_entries WHERE idx = ANY(%s)"
NODES_LEVEL_SQLITE = (
    "SELECT idx, hash FROM ledger_nodes WHERE level = ? AND idx IN (SELECT value FROM json_each(?))"
)
NODES_LEVEL_PG = "SELECT idx, hash FROM ledger_nodes WHERE level = %s AND idx = ANY(%s)"
FEW_NODES = 256  # up to this many, PostgreSQL reads all levels at once (see Nodes.read)
FEW_NODES_SQLITE = 24  # up to this many, SQLite reads them in one statement (see Nodes.read)
LEAF_SQL = "SELECT leaf_hash FROM ledger_entries WHERE idx = "
LEAF_SQLITE = "SELECT 0, idx, leaf_hash FROM ledger_entries WHERE idx = ?"
NODE_SQLITE = "SELECT level, idx, hash FROM ledger_nodes WHERE level = ? AND idx = ?"
FEW_PG = (
    "SELECT 0::smallint, idx, leaf_hash FROM ledger_entries WHERE idx = ANY(%s) UNION ALL "
    "SELECT n.level, n.idx, n.hash FROM unnest(%s::smallint[], %s::bigint[]) AS w(level, idx) "
    "JOIN ledger_nodes AS n ON n.level = w.level AND n.idx = w.idx"
)
NODES_PG = (
    "SELECT n.level, n.idx, n.hash FROM unnest(%s::smallint[], %s::bigint[]) AS w(level, idx) "
    "JOIN ledger_nodes AS n ON n.level = w.level AND n.idx = w.idx"
)


def _check_size(session: Session, tree_size: int) -> tuple[int, bytes]:
    """The log's (size, frontier), after checking that `tree_size` is within it."""
    seen = state(session)
    if tree_size < 0 or tree_size > seen[0]:
        raise BadTreeSize(size=seen[0], asked=tree_size)
    return seen


def root_at(session: Session, tree_size: int, nodes: Nodes | None = None) -> bytes:
    """MTH of the first `tree_size` entries."""
    seen = _check_size(session, tree_size)
    nodes = nodes or Nodes(session, seen)
    nodes.fetch(tree.complete_subtrees(0, tree_size))
    return tree.range_hash(0, tree_size, nodes)


def inclusion_proof(session: Session, index: int, tree_size: int) -> list[bytes]:
    """PATH(index, D[tree_size]) read from stored nodes."""
    seen = _check_size(session, tree_size)
    if not 0 <= index < tree_size:
        raise BadTreeSize(size=tree_size, asked=index)
    return inclusion_proofs(session, [index], tree_size, seen)[0]


def proven_leaf(session: Session, index: int, tree_size: int) -> tuple[bytes, list[bytes]]:
    """The leaf hash of entry `index` and PATH(index, D[tree_size]), by ONE statement: the
    state row (to check the size and the node cache), the leaf and the nodes of the path that
    the cache does not hold. A single proof on PostgreSQL thus costs one round trip, where
    `inclusion_proof` then `leaf` cost three; the cache is only checked once the state is
    read, and its nodes are read from the database after all if it turns out not to match."""
    if tree_size < 0:
        raise BadTreeSize(size=size(session), asked=tree_size)
    if not 0 <= index < tree_size:
        raise BadTreeSize(size=tree_size, asked=index)
    plan = tree.inclusion_ranges(index, tree_size)
    wanted = tree.needed_nodes(plan) | {(0, index)}
    cache = nodecache.cache_for(session.get_bind())
    generation = cache.generation
    cached = cache.get(wanted)
    current, frontier, found = _state_and_nodes(session, [c for c in wanted if c not in cached])

    def reader(coords: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        return read_nodes(session, coords)

    if tree_size > current:
        raise BadTreeSize(size=current, asked=tree_size)
    if cache.usable(current, frontier, reader) and cache.generation == generation:
        cache.keep(found)
    else:
        found.update(read_nodes(session, cached))
        cached = {}
    known = {**cached, **found}

    def lookup(level: int, node: int) -> bytes:
        try:
            return known[(level, node)]
        except KeyError:  # a stored node is gone: the store was tampered with
            raise UnknownEntry(index=node << level) from None

    path = [tree.range_hash(start, width, lookup) for start, width in plan]
    return lookup(0, index), path


def _state_and_nodes(
    session: Session, wanted: list[tuple[int, int]]
) -> tuple[int, bytes, dict[tuple[int, int], bytes]]:
    """(size, frontier) of the log and the stored nodes `wanted`, by one statement."""
    leaves = [i for level, i in wanted if level == 0]
    inner = [(level, i) for level, i in wanted if level > 0]
    if session.connection().dialect.name == "sqlite":
        if len(wanted) > FEW_NODES_SQLITE:  # a deep right edge: past SQLite's compound limit
            return (*state(session), read_nodes(session, wanted))
        parts = [STATE_NODES_SQLITE, *(LEAF_SQLITE for _ in leaves), *(NODE_SQLITE for _ in inner)]
        params: tuple[Any, ...] = (*leaves, *(v for node in inner for v in node))
        rows = _run(session, " UNION ALL ".join(parts), params)
    else:
        levels, indices = [level for level, _i in inner], [i for _level, i in inner]
        rows = _run(session, STATE_NODES_PG, (leaves, levels, indices))
    current, frontier = 0, b""
    found: dict[tuple[int, int], bytes] = {}
    for level, number, digest in rows:
        if level < 0:
            current, frontier = int(number), bytes(digest)
        else:
            found[(level, number)] = bytes(digest)
    return current, frontier, found


STATE_NODES_SQLITE = "SELECT -1, size, frontier FROM ledger_state WHERE id = 1"
STATE_NODES_PG = (
    "SELECT -1::smallint, size, frontier FROM ledger_state WHERE id = 1 UNION ALL "
    "SELECT 0::smallint, idx, leaf_hash FROM ledger_entries WHERE idx = ANY(%s) UNION ALL "
    "SELECT n.level, n.idx, n.hash FROM unnest(%s::smallint[], %s::bigint[]) AS w(level, idx) "
    "JOIN ledger_nodes AS n ON n.level = w.level AND n.idx = w.idx"
)


def inclusion_proofs(
    session: Session,
    indices: Sequence[int],
    tree_size: int,
    seen: tuple[int, bytes] | None = None,
) -> list[list[bytes]]:
    """Many inclusion proofs against one size, fetching every node they need at once.

    Paths share many subtrees (the upper levels, and the few on the tree's right edge that are
    not complete), so each distinct one is looked up or hashed once per batch. Auditors ask
    for proofs by the thousand: complete subtrees, most of them, are one stored node each and
    skip the general `range_hash`."""
    plans = [tree.inclusion_ranges(i, tree_size) for i in indices]
    complete: dict[tuple[int, int], tuple[int, int]] = {}  # (start, size) → (level, index)
    edge: list[tuple[int, int]] = []
    for start, size in {r for plan in plans for r in plan}:
        if size & (size - 1):
            edge.append((start, size))
        else:
            level = size.bit_length() - 1
            complete[(start, size)] = (level, start >> level)
    nodes = Nodes(session, seen)
    nodes.fetch([*complete.values(), *tree.needed_nodes(edge)])
    known = nodes.known
    try:
        hashes = {r: known[node] for r, node in complete.items()}
    except KeyError as missing:  # a stored node is gone: the store was tampered with
        level, index = missing.args[0]
        raise UnknownEntry(index=index << level) from None
    hashes.update((r, tree.range_hash(*r, nodes)) for r in edge)
    return [[hashes[r] for r in plan] for plan in plans]


def consistency_proof(session: Session, first: int, second: int) -> list[bytes]:
    """PROOF(first, D[second]) read from stored nodes."""
    current = size(session)
    if not 0 < first <= second <= current:
        raise BadProofRange(size=current, first=first, second=second)
    nodes = Nodes(session)
    plan = tree.consistency_ranges(first, second)
    nodes.fetch(tree.needed_nodes(plan))
    return [tree.range_hash(s, n, nodes) for s, n in plan]


def consistency_proofs(
    session: Session, pairs: Sequence[tuple[int, int]]
) -> list[tuple[bytes, bytes, list[bytes]]]:
    """For many (first, second) pairs: both roots and the proof, with one fetch of every node
    they need — what an auditor replaying many heads asks for."""
    current = size(session)
    for first, second in pairs:
        if not 0 < first <= second <= current:
            raise BadProofRange(size=current, first=first, second=second)
    nodes = Nodes(session)
    plans = [tree.consistency_ranges(a, b) for a, b in pairs]
    wanted: set[tuple[int, int]] = set()
    for (a, b), plan in zip(pairs, plans, strict=True):
        wanted |= tree.needed_nodes([*plan, (0, a), (0, b)])
    nodes.fetch(wanted)
    return [
        (
            tree.range_hash(0, a, nodes),
            tree.range_hash(0, b, nodes),
            [tree.range_hash(s, n, nodes) for s, n in plan],
        )
        for (a, b), plan in zip(pairs, plans, strict=True)
    ]


def entries(session: Session, start: int, end: int) -> list[LogEntry]:
    """Entries with start ≤ index < end, in order."""
    return list(
        session.scalars(
            select(LogEntry)
            .where(LogEntry.index >= start, LogEntry.index < end)
            .order_by(LogEntry.index)
        ).all()
    )


def leaf(session: Session, index: int) -> bytes:
    """The stored leaf hash of entry `index`, by one plain statement."""
    mark = "?" if session.connection().dialect.name == "sqlite" else "%s"
    rows = _run(session, LEAF_SQL + mark, (index,))
    if not rows:
        raise UnknownEntry(index=index)
    return bytes(rows[0][0])


def entry(session: Session, index: int) -> LogEntry:
    row = session.get(LogEntry, index)
    if row is None:
        raise UnknownEntry(index=index)
    return row


# --- tiles (c2sp.org/tlog-tiles) ------------------------------------------------------------


def _tile_rows(session: Session, tile: tiles.Tile, column: str) -> list[bytes]:
    """The `width` values of a tile's span, in order; a missing row (a log tampered with
    under the hub) is named rather than served as a short tile."""
    current = size(session)
    if tile.width == 0 or tiles.width_at(tile.level, tile.index, current) < tile.width:
        raise NoTile(size=current, path=tile.path)
    sqlite = session.connection().dialect.name == "sqlite"
    first = tile.index * tiles.WIDTH
    if tile.level == 0:
        sql = TILE_ENTRIES[column]
        params: tuple[int, ...] = (first, first + tile.width)
    else:
        sql = TILE_NODES
        params = (tiles.HEIGHT * tile.level, first, first + tile.width)
    rows = _run(session, sql if sqlite else sql.replace("?", "%s"), params)
    values = []
    for offset in range(tile.width):
        if offset >= len(rows) or rows[offset][0] != first + offset:
            raise UnknownEntry(index=(first + offset) << (tiles.HEIGHT * tile.level))
        values.append(bytes(rows[offset][1]))
    return values


TILE_ENTRIES = {
    column: f"SELECT idx, {column} FROM ledger_entries WHERE idx >= ? AND idx < ? ORDER BY idx"  # noqa: S608 (a fixed column name)
    for column in ("leaf_hash", "body")
}
TILE_NODES = (
    "SELECT idx, hash FROM ledger_nodes WHERE level = ? AND idx >= ? AND idx < ? ORDER BY idx"
)


def tile_hashes(session: Session, tile: tiles.Tile) -> bytes:
    """The hashes of a tile, concatenated: leaf hashes at level 0, stored nodes of level
    8·L above (each the root of a full tile below)."""
    return b"".join(_tile_rows(session, tile, "leaf_hash"))


def entry_bundle(session: Session, tile: tiles.Tile) -> bytes:
    """The entries of a level-0 tile as an entry bundle."""
    bodies = _tile_rows(session, tile, "body")
    for offset, body in enumerate(bodies):
        if len(body) > tiles.MAX_ENTRY:
            raise EntryTooLarge(index=tile.index * tiles.WIDTH + offset, length=len(body))
    return tiles.bundle(bodies)


# --- signed tree heads ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Head:
    size: int
    root: bytes
    timestamp: str
    signature: str

    def to_json(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "root": self.root.hex(),
            "timestamp": self.timestamp,
            "signature": self.signature,
        }


def head_message(tree_size: int, root: bytes, timestamp: str) -> bytes:
    """What the hub signs: canonical JSON of the head (RFC 9162's fields, JSON-encoded)."""
    return canonical_json(
        {"log": "concord", "root": root.hex(), "size": tree_size, "timestamp": timestamp}
    )


def _head(row: SignedHead) -> Head:
    stamp = row.timestamp.isoformat().replace("+00:00", "Z")
    return Head(row.size, row.root, stamp, row.signature)


def latest_head(session: Session, key: Ed25519PrivateKey) -> Head:
    """The newest signed head, signing a new one first if the log has grown since.

    Heads are signed when someone asks for one rather than inside every appending
    transaction: a transaction cannot know it is the last one before a commit, and signing
    lazily gives one head per size that anyone has seen, each kept for consistency proofs.
    """
    tree_size, root = current_root(session)
    row = session.scalars(select(SignedHead).order_by(SignedHead.size.desc())).first()
    if row is not None and row.size >= tree_size:
        return _head(row)
    now = utcnow()
    stamp = now.isoformat().replace("+00:00", "Z")
    signature = base64.b64encode(key.sign(head_message(tree_size, root, stamp))).decode()
    try:
        with session.begin_nested():
            session.add(SignedHead(size=tree_size, root=root, timestamp=now, signature=signature))
    except IntegrityError:  # another hub process signed this size a moment ago
        existing = session.get(SignedHead, tree_size)
        assert existing is not None
        return _head(existing)
    session.commit()
    return Head(tree_size, root, stamp, signature)


def heads(session: Session, limit: int = 100, before: int | None = None) -> list[Head]:
    """Signed heads, newest first; `before` pages back (heads of smaller sizes only)."""
    query = select(SignedHead).order_by(SignedHead.size.desc()).limit(limit)
    if before is not None:
        query = query.where(SignedHead.size < before)
    return [_head(r) for r in session.scalars(query)]


def verify_head(public_key: bytes, head: Head) -> bool:
    """True if `head` carries a valid signature by `public_key` (raw 32 bytes)."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(
            base64.b64decode(head.signature, validate=True),
            head_message(head.size, head.root, head.timestamp),
        )
    except Exception:  # any decoding or signature failure means "not valid"
        return False
    return True
