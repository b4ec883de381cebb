"""Content-defined chunk storage, deduplicated below the file level.

A file is cut by FastCDC 2020 (pyfastcdc, ~64 KiB average chunks, as the Hub's Xet storage
does); each chunk is named by its BLAKE3 hash and stored once. The new chunks of one upload are
written together into one pack file (temp file, fsync, rename: a pack is either whole or
absent), so serving a file is a few large sequential reads. Every chunk is verified against its
name when read.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, NamedTuple
from urllib.parse import urlparse

import blake3
from pyfastcdc.cy import FastCDC
from sqlalchemy import select
from sqlalchemy.orm import Session

from concord.commons.tables import Blob, Chunk
from concord.db import utcnow
from concord.errors import N_, Unavailable

AVERAGE = 64 * 1024
READ = 4 * 1024 * 1024
_cutter = FastCDC(avg_size=AVERAGE, min_size=AVERAGE // 4, max_size=AVERAGE * 4)


class CorruptChunk(Unavailable):
    code = "commons.corrupt_chunk"
    message = N_("Stored chunk {chunk} does not match its hash; the store needs repair.")


class UnsupportedStorage(Unavailable):
    code = "commons.storage_unsupported"
    message = N_("The storage URL {url} is not supported on this hub yet; use a folder.")


@dataclass(frozen=True, slots=True)
class Cut:
    """One chunk of a file: its BLAKE3 name, offset in the file and length."""

    hash: str
    offset: int
    length: int


class ChunkStore:
    """Packs of chunks in a folder (`CONCORD_STORAGE_URL=file:///…`, the default)."""

    def __init__(self, url: str) -> None:
        parsed = urlparse(url)
        if parsed.scheme != "file":
            raise UnsupportedStorage(url=url)
        self.root = Path(parsed.path)
        self.packs = self.root / "packs"
        self.packs.mkdir(parents=True, exist_ok=True)

    def pack_path(self, pack: str) -> Path:
        return self.packs / f"{pack}.pack"

    def ingest(self, session: Session, source: Path) -> Blob:
        """Chunks `source`, stores the chunks not yet known, and records its blob."""
        sha = hashlib.sha256()
        cuts: list[Cut] = []
        with source.open("rb") as handle:
            for piece in _cutter.cut_file(str(source)) if source.stat().st_size else []:
                data = bytes(piece.data)
                sha.update(data)
                cuts.append(Cut(blake3.blake3(data).hexdigest(), piece.offset, piece.length))
            del handle
        digest = sha.hexdigest()
        existing = session.get(Blob, digest)
        if existing is not None:
            return existing
        known = set()
        names = list({c.hash for c in cuts})
        for start in range(0, len(names), 900):
            known |= set(
                session.scalars(
                    select(Chunk.hash).where(Chunk.hash.in_(names[start : start + 900]))
                ).all()
            )
        fresh = []
        seen = set(known)
        for c in cuts:
            if c.hash not in seen:
                fresh.append(c)
                seen.add(c.hash)
        if fresh:
            pack = secrets.token_hex(16)
            rows = self._write_pack(pack, source, fresh)
            session.add_all(rows)
        blob = Blob(
            sha256=digest,
            size=source.stat().st_size,
            chunks=[[c.hash, c.length] for c in cuts],
            created_at=utcnow(),
        )
        session.add(blob)
        session.flush()
        return blob

    def _write_pack(self, pack: str, source: Path, fresh: list[Cut]) -> list[Chunk]:
        rows = []
        descriptor, temporary = tempfile.mkstemp(dir=self.packs, prefix=".pack-")
        try:
            with os.fdopen(descriptor, "wb") as out, source.open("rb") as inp:
                position = 0
                for c in fresh:
                    inp.seek(c.offset)
                    out.write(inp.read(c.length))
                    rows.append(Chunk(hash=c.hash, pack=pack, offset=position, length=c.length))
                    position += c.length
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.pack_path(pack))
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return rows

    def stream(
        self, session: Session, blob: Blob, start: int = 0, end: int | None = None
    ) -> Iterator[bytes]:
        """The bytes [start, end) of a blob, each chunk verified, yielded in ~4 MiB pieces.

        The chunk locations are read now, so the iterator never touches the database: a slow
        download must not keep a transaction (on SQLite, the write lock) open."""
        locations = _locations(session, [h for h, _n in blob.chunks])
        chunks = [(h, n) for h, n in blob.chunks]
        return self._read(chunks, locations, start, blob.size if end is None else end)

    def _read(
        self, chunks: list[tuple[str, int]], locations: dict[str, Location], start: int, end: int
    ) -> Iterator[bytes]:
        handles: dict[str, BinaryIO] = {}
        buffer: list[bytes] = []
        buffered = 0
        offset = 0
        try:
            for name, length in chunks:
                c_start, c_end = offset, offset + length
                offset = c_end
                if c_end <= start:
                    continue
                if c_start >= end:
                    break
                chunk = locations[name]
                handle = handles.get(chunk.pack)
                if handle is None:
                    handle = handles[chunk.pack] = self.pack_path(chunk.pack).open("rb")
                handle.seek(chunk.offset)
                data = handle.read(chunk.length)
                if blake3.blake3(data).hexdigest() != name:
                    raise CorruptChunk(chunk=name)
                piece = data[max(0, start - c_start) : min(length, end - c_start)]
                buffer.append(piece)
                buffered += len(piece)
                if buffered >= READ:
                    yield b"".join(buffer)
                    buffer, buffered = [], 0
            if buffer:
                yield b"".join(buffer)
        finally:
            for handle in handles.values():
                handle.close()

    def read_chunk(self, session: Session, name: str) -> bytes:
        chunk = session.get(Chunk, name)
        if chunk is None:
            raise CorruptChunk(chunk=name)
        with self.pack_path(chunk.pack).open("rb") as handle:
            handle.seek(chunk.offset)
            data = handle.read(chunk.length)
        if blake3.blake3(data).hexdigest() != name:
            raise CorruptChunk(chunk=name)
        return data

    def put_chunk(self, session: Session, name: str, data: bytes) -> None:
        """Stores one verified chunk (mirrors and bundles bring chunks, not files)."""
        if blake3.blake3(data).hexdigest() != name:
            raise CorruptChunk(chunk=name)
        if session.get(Chunk, name) is not None:
            return
        pack = secrets.token_hex(16)
        descriptor, temporary = tempfile.mkstemp(dir=self.packs, prefix=".pack-")
        with os.fdopen(descriptor, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, self.pack_path(pack))
        session.add(Chunk(hash=name, pack=pack, offset=0, length=len(data)))


class Location(NamedTuple):
    """Where a chunk lies; plain values, so a stream never reaches back into the session."""

    pack: str
    offset: int
    length: int


def _locations(session: Session, names: list[str]) -> dict[str, Location]:
    unique = list(dict.fromkeys(names))
    found: dict[str, Location] = {}
    for start in range(0, len(unique), 900):
        for row in session.execute(
            select(Chunk.hash, Chunk.pack, Chunk.offset, Chunk.length).where(
                Chunk.hash.in_(unique[start : start + 900])
            )
        ):
            found[row.hash] = Location(row.pack, row.offset, row.length)
    return found
