"""Content-defined chunk storage, deduplicated below the file level.

A file is cut by FastCDC 2020 (pyfastcdc, ~64 KiB average chunks, as the Hub's Xet storage
does); each chunk is named by its BLAKE3 hash and stored once. New chunks are appended to a
pack, a block of up to 64 MiB written to a scratch file and then stored atomically by the
backend (a folder or S3-compatible storage, see `storage.py`): a pack is whole or absent. The
chunks of one upload lie contiguously in their packs, so serving a file is a few large ranged
reads. Every chunk is verified against its name when read.
"""

from __future__ import annotations

import bisect
import hashlib
import io
import os
import queue
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import blake3
from pyfastcdc.cy import FastCDC
from sqlalchemy import insert, inspect, select
from sqlalchemy.orm import Session

from concord.commons.storage import Backend, open_backend
from concord.commons.tables import Blob, Chunk
from concord.config import Settings
from concord.db import utcnow
from concord.errors import N_, NotFound, Unavailable

AVERAGE = 64 * 1024
READ = 16 * 1024 * 1024  # bytes of neighbouring chunks read (or mapped) at once
BLOCK = 8 * 1024 * 1024  # bytes read at a time while cutting
PACK = 64 * 1024 * 1024
READ_BUFFER = 1024 * 1024  # bytes a blob opened as a file reads at once
LOOKUP = 900  # names per IN (…) query: under SQLite's variable limit
BATCH = 128  # new chunks looked up together while cutting (about 8 MiB)
_cutter = FastCDC(avg_size=AVERAGE, min_size=AVERAGE // 4, max_size=AVERAGE * 4)


class CorruptChunk(Unavailable):
    code = "commons.corrupt_chunk"
    message = N_("Stored chunk {chunk} does not match its hash; the store needs repair.")


class UnknownChunk(NotFound):
    code = "commons.unknown_chunk"
    message = N_("There is no chunk {chunk} in this commons.")


@dataclass(frozen=True, slots=True)
class Cut:
    """One chunk of a file: its BLAKE3 name, offset in the file and length."""

    hash: str
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class Location:
    """Where a chunk lies: its pack, offset in the pack, and length."""

    pack: str
    offset: int
    length: int


def pack_object(pack: str) -> str:
    return f"packs/{pack}.pack"


class PackWriter:
    """Appends chunks to a scratch file and stores it as a pack when full or flushed.

    The chunk rows go into the caller's session, so they become visible with its commit; a
    rollback leaves at most unreferenced packs, never a row naming a missing pack.
    """

    def __init__(self, session: Session, backend: Backend) -> None:
        self.session = session
        self.backend = backend
        self.names: set[str] = set()
        self._out: Path | None = None
        self._fd = -1
        self._rows: list[dict[str, str | int]] = []
        self._size = 0
        self.stored: list[str] = []  # packs put in the backend by this writer

    def add(self, name: str, data: bytes | memoryview) -> None:
        """Queues a chunk already verified against `name` (a repeat is ignored)."""
        if name in self.names:
            return
        if self._fd < 0:
            self._pack = secrets.token_hex(16)
            self._out = self.backend.scratch() / f".pack-{self._pack}"
            self._fd = os.open(self._out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            self._rows, self._size = [], 0
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        self._rows.append(
            {"hash": name, "pack": self._pack, "offset": self._size, "length": len(data)}
        )
        self._size += len(data)
        self.names.add(name)
        if self._size >= PACK:
            self.seal()

    def seal(self) -> None:
        """Stores the current pack (if any) and records its chunks in the session."""
        if self._fd < 0 or self._out is None:
            return
        os.close(self._fd)
        self._fd = -1
        self.backend.put_file(pack_object(self._pack), self._out)
        self.stored.append(pack_object(self._pack))
        # Plain INSERTs in the caller's transaction: ORM objects for the ~16,000 chunks of a
        # 1 GiB file would stay in the session's memory until its commit.
        self.session.execute(insert(Chunk), self._rows)
        self._rows = []

    def abort(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._out is not None:
            self._out.unlink(missing_ok=True)

    def discard(self) -> None:
        """Aborts and deletes the packs already stored: for a caller that will roll back the
        transaction holding their rows (a refused import leaves nothing behind)."""
        self.abort()
        for name in self.stored:
            self.backend.delete(name)
        self.stored = []


class ChunkStore:
    """The chunk index (database) over a backend that holds the packs."""

    def __init__(self, url: str, endpoint: str = "", scratch: Path | None = None) -> None:
        self.backend = open_backend(url, endpoint, scratch)

    def scratch(self) -> Path:
        """Where uploads wait while they are checked and cut."""
        return self.backend.scratch()

    def writer(self, session: Session) -> PackWriter:
        return PackWriter(session, self.backend)

    def ingest(self, session: Session, source: Path, sha256: str | None = None) -> Blob:
        """Chunks `source`, stores the chunks not yet known, and records its blob.

        `sha256`, when the caller has already hashed the bytes (an upload is hashed as it
        arrives), saves a second pass over them. The file is read in blocks, so memory stays
        the same whatever its size; chunks are cut, named and packed straight from a block."""
        digest = _Sha256() if sha256 is None else None
        cuts: list[Cut] = []
        fresh: list[tuple[str, memoryview]] = []
        writer = self.writer(session)
        size = 0
        try:
            with source.open("rb", buffering=0) as handle:
                for offset, piece in _pieces(handle, digest):
                    name = blake3.blake3(piece).hexdigest()
                    cuts.append(Cut(name, offset, len(piece)))
                    fresh.append((name, piece))
                    size = offset + len(piece)
                    # Looked up in small batches: a batch holds its blocks in memory.
                    if len(fresh) >= BATCH:
                        self._store_fresh(session, writer, fresh)
                        fresh = []
            self._store_fresh(session, writer, fresh)
        except BaseException:
            writer.abort()
            raise
        finally:
            sha = digest.result() if digest is not None else sha256
        assert sha is not None
        writer.seal()
        existing = session.get(Blob, sha)
        if existing is not None:
            return existing  # the same bytes again: every chunk was known, nothing was packed
        blob = Blob(
            sha256=sha,
            size=size,
            chunks=[[c.hash, c.length] for c in cuts],
            created_at=utcnow(),
        )
        session.add(blob)
        session.flush()
        return blob

    @staticmethod
    def _store_fresh(
        session: Session, writer: PackWriter, pieces: list[tuple[str, memoryview]]
    ) -> None:
        known = known_chunks(session, [name for name, _piece in pieces])
        for name, piece in pieces:
            if name not in known:
                writer.add(name, piece)

    def open(self, session: Session, blob: Blob) -> BinaryIO:
        """A blob's bytes as a read-only seekable file (read on demand, chunks verified):
        what the format gate reads at commit time without copying the file."""
        return io.BufferedReader(_BlobFile(self, session, blob), READ_BUFFER)

    def stream(
        self, session: Session, blob: Blob, start: int = 0, end: int | None = None
    ) -> Iterator[memoryview]:
        """The bytes [start, end) of a blob, each chunk verified, yielded in pieces of up to
        16 MiB (views of the store: pass them on or copy them, do not keep many).

        Only the chunks that overlap the range are looked up, and they are looked up now, so
        the iterator never touches the database: a slow download must not keep a transaction
        (on SQLite, the write lock) open."""
        end = blob.size if end is None else min(end, blob.size)
        names, starts = _listing(blob)
        first = max(0, bisect.bisect_right(starts, start) - 1)
        last = bisect.bisect_left(starts, end)
        chunks = [
            (names[i], (starts[i + 1] if i + 1 < len(starts) else blob.size) - starts[i])
            for i in range(first, last)
        ]
        locations = _locations(session, [name for name, _n in chunks])
        offset = starts[first] if chunks else 0
        return self._read(chunks, locations, start - offset, end - offset)

    def _read(
        self, chunks: list[tuple[str, int]], locations: dict[str, Location], start: int, end: int
    ) -> Iterator[memoryview]:
        for first, data, _names in self._runs(chunks, locations, start, end):
            skip = max(0, start - first)
            last = min(len(data), end - first)
            yield data if skip == 0 and last == len(data) else data[skip:last]

    def _runs(
        self, chunks: list[tuple[str, int]], locations: dict[str, Location], start: int, end: int
    ) -> Iterator[tuple[int, memoryview, list[tuple[str, int]]]]:
        """Runs of chunks that lie back to back in one pack, each read with one ranged read
        and every chunk in it verified: (file offset of the run, its bytes, its chunks)."""
        offset = 0
        index = 0
        count = len(chunks)
        while index < count and offset < end:
            name, length = chunks[index]
            if offset + length <= start:
                offset += length
                index += 1
                continue
            head = locations.get(name)
            if head is None:
                raise CorruptChunk(chunk=name)
            names = [(name, length)]
            size = length
            stop = index + 1
            while stop < count and size < READ and offset + size < end:
                following = locations.get(chunks[stop][0])
                if (
                    following is None
                    or following.pack != head.pack
                    or following.offset != head.offset + size
                ):
                    break
                names.append(chunks[stop])
                size += chunks[stop][1]
                stop += 1
            data = self.backend.view(pack_object(head.pack), head.offset, size)
            position = 0
            for chunk_name, chunk_length in names:
                if (
                    blake3.blake3(data[position : position + chunk_length]).hexdigest()
                    != chunk_name
                ):
                    raise CorruptChunk(chunk=chunk_name)
                position += chunk_length
            yield offset, data, names
            offset += size
            index = stop

    def chunks(self, session: Session, names: Iterable[str]) -> Iterator[tuple[str, memoryview]]:
        """The named chunks in order, verified, read in runs where they lie together."""
        listed = [(name, 0) for name in names]
        locations = _locations(session, [n for n, _ in listed])
        listed = [(n, locations[n].length if n in locations else 0) for n, _ in listed]
        total = sum(n for _h, n in listed)
        for _offset, data, names_in_run in self._runs(listed, locations, 0, total):
            position = 0
            for name, length in names_in_run:
                yield name, data[position : position + length]
                position += length

    def read_chunk(self, session: Session, name: str) -> bytes:
        chunk = session.get(Chunk, name)
        if chunk is None:  # asked for a name it does not hold: not a fault of the store
            raise UnknownChunk(chunk=name)
        data = self.backend.read(pack_object(chunk.pack), chunk.offset, chunk.length)
        if blake3.blake3(data).hexdigest() != name:
            raise CorruptChunk(chunk=name)
        return data

    def put_chunk(self, session: Session, name: str, data: bytes) -> None:
        """Stores one chunk in a pack of its own (use `writer` for many)."""
        if blake3.blake3(data).hexdigest() != name:
            raise CorruptChunk(chunk=name)
        if session.get(Chunk, name) is not None:
            return
        writer = self.writer(session)
        writer.add(name, data)
        writer.seal()


class _BlobFile(io.RawIOBase):
    """The raw side of `ChunkStore.open`: each read asks the store for one range."""

    def __init__(self, store: ChunkStore, session: Session, blob: Blob) -> None:
        self._store = store
        self._session = session
        self._blob = blob
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._blob.size}
        self._position = max(0, base[whence] + offset)
        return self._position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        end = min(self._blob.size, self._position + len(view))
        if end <= self._position:
            return 0
        written = 0
        for piece in self._store.stream(self._session, self._blob, self._position, end):
            view[written : written + len(piece)] = piece
            written += len(piece)
        self._position += written
        return written


@dataclass
class Swept:
    packs: int = 0
    scratch_files: int = 0
    bytes: int = 0


def sweep(session: Session, store: ChunkStore, older_than_s: float) -> Swept:
    """Deletes what a killed process left behind: packs that no chunk row names and scratch
    files (half-written packs, uploads being cut), if older than `older_than_s`.

    A pack is stored before the transaction that names its chunks commits, so a crash between
    the two leaves an unreferenced pack: wasted space, never a row naming a missing pack. The
    age guard spares packs whose transaction is still open (a mirror over a slow link writes
    packs long before it commits): keep it above the longest mirror or import you run.
    """
    swept = Swept()
    cutoff = time.time() - older_than_s
    named = {pack_object(pack) for pack in session.scalars(select(Chunk.pack).distinct())}
    for name, size, written in list(store.backend.objects()):
        if written < cutoff and name not in named:
            # Checked again just before deleting: a commit may have named it since the listing.
            pack = name.removeprefix("packs/").removesuffix(".pack")
            if session.scalar(select(Chunk.hash).where(Chunk.pack == pack).limit(1)) is None:
                store.backend.delete(name)
                swept.packs += 1
                swept.bytes += size
    for entry in os.scandir(store.scratch()):
        if not entry.name.startswith((".pack-", ".upload-")):
            continue
        status = entry.stat()
        if status.st_mtime < cutoff:
            swept.scratch_files += 1
            swept.bytes += status.st_size
            Path(entry.path).unlink(missing_ok=True)
    return swept


def open_store(settings: Settings) -> ChunkStore:
    """The hub's chunk store, as its settings name it."""
    return ChunkStore(
        settings.storage(), settings.s3_endpoint_url, settings.data_dir.resolve() / "scratch"
    )


class _Sha256:
    """SHA-256 of a stream, computed on a thread of its own (hashlib releases the GIL, so it
    runs beside the cutting on the second core)."""

    def __init__(self) -> None:
        self._sha = hashlib.sha256()
        self._queue: queue.Queue[memoryview | None] = queue.Queue(maxsize=4)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (block := self._queue.get()) is not None:
            self._sha.update(block)

    def update(self, block: memoryview) -> None:
        self._queue.put(block)

    def result(self) -> str:
        self._queue.put(None)
        self._thread.join()
        return self._sha.hexdigest()


def _pieces(
    handle: io.RawIOBase | io.BufferedIOBase, digest: _Sha256 | None
) -> Iterator[tuple[int, memoryview]]:
    """(offset, bytes) of each chunk of the stream, read in blocks of `BLOCK`.

    FastCDC decides a cut from the bytes since the chunk's start only, so cutting a block at a
    time, carrying its last (perhaps unfinished) chunk into the next, gives exactly the chunks
    of the whole stream. Each block is a new buffer, never changed, so a chunk's view stays
    valid while anyone holds it."""
    carry = memoryview(b"")
    base = 0  # file offset of the block's first byte
    while True:
        block = bytearray(len(carry) + BLOCK)
        block[: len(carry)] = carry
        view = memoryview(block)
        filled = len(carry)
        while filled < len(block):
            n = handle.readinto(view[filled:])
            if not n:
                break
            filled += n
        if digest is not None and filled > len(carry):
            digest.update(view[len(carry) : filled])
        eof = filled < len(block)
        if not filled:
            return
        view = view[:filled]
        cuts = list(_cutter.cut_buf(view))
        for piece in cuts if eof else cuts[:-1]:
            yield base + piece.offset, view[piece.offset : piece.offset + piece.length]
        if eof:
            return
        base += cuts[-1].offset
        carry = view[cuts[-1].offset :]


# Parsed chunk lists of recently served blobs. A blob is named by the SHA-256 of its bytes and
# the chunker's parameters are fixed, so a list never changes: parallel ranges of one file
# (a 1 GiB file has ~16,000 chunks) parse its list once, not once per range.
_LISTINGS: OrderedDict[tuple[str, str], tuple[list[str], list[int]]] = OrderedDict()
_LISTINGS_LOCK = threading.Lock()


def _listing(blob: Blob) -> tuple[list[str], list[int]]:
    """The blob's chunk names and the offset where each starts."""
    # Only recorded blobs are cached: a mirror or bundle checks a blob it has not recorded
    # yet, whose list may be false, and must not leave that list behind for others.
    state = inspect(blob)
    session = state.session if state.persistent else None
    recorded = session is not None
    # Keyed by database too: one process may serve several hubs (tests, benchmarks).
    key = (str(session.get_bind().engine.url), blob.sha256) if session is not None else ("", "")
    with _LISTINGS_LOCK:
        found = _LISTINGS.get(key) if recorded else None
        if found is not None:
            _LISTINGS.move_to_end(key)
            return found
    names, starts, position = [], [], 0
    for name, length in blob.chunks:
        names.append(name)
        starts.append(position)
        position += length
    if not recorded:
        return names, starts
    with _LISTINGS_LOCK:
        _LISTINGS[key] = (names, starts)
        while len(_LISTINGS) > 32:
            _LISTINGS.popitem(last=False)
    return names, starts


def known_chunks(session: Session, names: list[str]) -> set[str]:
    unique = list(dict.fromkeys(names))
    found: set[str] = set()
    for start in range(0, len(unique), LOOKUP):
        found.update(
            session.scalars(
                select(Chunk.hash).where(Chunk.hash.in_(unique[start : start + LOOKUP]))
            )
        )
    return found


def _locations(session: Session, names: list[str]) -> dict[str, Location]:
    """Where each chunk lies, as plain values: ORM rows would be expired by the caller's
    rollback and reload one by one, from the database, in the middle of a download."""
    unique = list(dict.fromkeys(names))
    found: dict[str, Location] = {}
    for start in range(0, len(unique), LOOKUP):
        rows = session.execute(
            select(Chunk.hash, Chunk.pack, Chunk.offset, Chunk.length).where(
                Chunk.hash.in_(unique[start : start + LOOKUP])
            )
        )
        for name, pack, offset, length in rows:
            found[name] = Location(pack, offset, length)
    return found
