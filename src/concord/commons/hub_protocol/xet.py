"""The Xet upload protocol, as `huggingface_hub` speaks it whenever `hf_xet` is installed.

The client decides alone: with `hf_xet` importable (and `HF_HUB_DISABLE_XET` unset) it uploads
every file given by path through Xet and never asks the LFS batch API, whatever the hub says.
So the hub receives Xet: a write token for the repository (`…/xet-write-token/{revision}`),
then, at the `casUrl` it names, xorbs (chunks, compressed) and one shard that lists each
file's chunk ranges and its SHA-256. The shard's files are rebuilt from the xorbs, checked
against that SHA-256, and ingested into the chunk store exactly as an LFS upload is; the
commit that follows names them by SHA-256 and passes the same gate as `concord push`.

Xorbs wait in the store's scratch folder, under the uploading member, until a shard uses
them; no global deduplication is offered (its query answers 404), and nothing is served
through Xet: downloads stay plain HTTP, as the hub sends no Xet headers."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import struct
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import lz4.block as lz4_block
import lz4.frame as lz4_frame
from cryptography.exceptions import InvalidSignature
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from concord import metrics
from concord.commons import repositories as repos
from concord.commons.chunks import ChunkStore, open_store
from concord.commons.hub_protocol.common import kind_in, on, writable
from concord.errors import N_, Invalid, TooLarge, Unauthenticated
from concord.http import Db, allow_large_bodies
from concord.hubkey import load_or_create
from concord.members.auth import CurrentPerson

router = APIRouter(include_in_schema=False)
CAS = "/api/commons/xet"
allow_large_bodies(CAS)
VALID_S = 3600
HASH = re.compile(r"^[0-9a-f]{64}$")
# xet-core fills a xorb with up to 64 MiB of chunk data (and 8,192 chunks); serialized, each
# chunk gains an 8-byte header and the footer lists every chunk's hash and offsets, so a full
# xorb runs past 64 MiB (a 1 GiB upload was refused with 413 at exactly 64 MiB).
XORB_MAX_BYTES = (64 + 2) * 1024 * 1024
BOOKEND = b"\xff" * 32
SHARD_TAG_LENGTH = 32
WITH_VERIFICATION = 1 << 31
WITH_METADATA = 1 << 30


class BadXetToken(Unauthenticated):
    code = "commons.xet_bad_token"
    message = N_("This Xet token is not valid or has expired; ask the hub for a new one.")


class BadXetObject(Invalid):
    code = "commons.xet_bad_object"
    message = N_("The Xet upload cannot be read: {reason}")


# --- the token: which member may send xorbs and shards for which repository, until when ---


@dataclass(frozen=True, slots=True)
class Grant:
    kind: str
    owner: str
    name: str
    member: int
    expires: int


def _claim(grant: Grant) -> bytes:
    return json.dumps(
        ["xet-write", grant.kind, grant.owner, grant.name, grant.member, grant.expires]
    ).encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue(request: Request, grant: Grant) -> str:
    claim = _claim(grant)
    signature = load_or_create(request.app.state.settings).sign(claim)
    return f"xet_{_b64(claim)}.{_b64(signature)}"


def bearer(request: Request) -> Grant:
    """The grant that the request's Xet token carries, checked against the hub's key."""
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else ""
    try:
        claim_text, _sep, signature = token.removeprefix("xet_").partition(".")
        claim = _unb64(claim_text)
        load_or_create(request.app.state.settings).public_key().verify(_unb64(signature), claim)
        tag, kind, owner, name, member, expires = json.loads(claim)
    except (InvalidSignature, ValueError, TypeError) as exc:
        raise BadXetToken() from exc
    if tag != "xet-write" or int(expires) < time.time():
        raise BadXetToken()
    return Grant(str(kind), str(owner), str(name), int(member), int(expires))


@on(router, "get", "/{owner}/{name}/xet-write-token/{revision:path}")
def write_token(
    owner: str, name: str, revision: str, request: Request, db: Db, person: CurrentPerson
) -> dict[str, Any]:
    """A short-lived token for this repository's member, and where to send the xorbs."""
    kind = kind_in(request)
    _repo, member = writable(db, person, kind, owner, name)
    grant = Grant(kind, owner, name, member.id, int(time.time()) + VALID_S)
    base = str(request.base_url).rstrip("/")
    return {"accessToken": issue(request, grant), "exp": grant.expires, "casUrl": base + CAS}


# --- xorbs: chunks, each behind an 8-byte header, compressed three ways ------------------


LZ4_FRAME = b"\x04\x22\x4d\x18"


def lz4(data: bytes, size: int) -> bytes:
    """LZ4, as a frame (what xet-core writes) or a bare block, decoded into at most `size`
    bytes: the chunk header's size bounds the output, so a small crafted chunk cannot expand
    into gigabytes (LZ4 reaches 255:1)."""
    try:
        if data[:4] != LZ4_FRAME:
            return bytes(lz4_block.decompress(data, uncompressed_size=size))
        frame = lz4_frame.LZ4FrameDecompressor()
        out = frame.decompress(data, max_length=size)
    except (lz4_block.LZ4BlockError, RuntimeError, ValueError) as exc:  # corrupt input
        raise BadXetObject(reason=N_("a compressed chunk is corrupt")) from exc
    if not frame.eof:
        raise BadXetObject(reason=N_("a chunk's size is not the one its header gives"))
    return bytes(out)


def ungroup(grouped: bytes) -> bytes:
    """Undoes byte grouping: byte k of every 4 was gathered into the k-th quarter."""
    n = len(grouped)
    out = bytearray(n)
    base, rest = divmod(n, 4)
    position = 0
    for group in range(4):
        size = base + (1 if group < rest else 0)
        out[group::4] = grouped[position : position + size]
        position += size
    return bytes(out)


def chunks_of(xorb: bytes) -> list[bytes]:
    """The raw chunks of a serialized xorb, in order (any footer after them is skipped)."""
    chunks = list(_chunks(io.BytesIO(xorb)))
    if not chunks:
        raise BadXetObject(reason=N_("a xorb holds no chunk"))
    return chunks


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    """Each raw chunk of a serialized xorb read from `stream`, one at a time: a xorb holds up
    to 64 MiB, and several arrive at once, so none is held whole."""
    while len(header := stream.read(8)) == 8:
        version, scheme = header[0], header[4]
        stored = int.from_bytes(header[1:4], "little")
        size = int.from_bytes(header[5:8], "little")
        if version != 0 or scheme > 2:
            return  # the footer (xet-core's "XETBLOB" metadata) begins here
        body = stream.read(stored)
        if len(body) != stored:
            return
        raw = body if scheme == 0 else lz4(body, size)
        if scheme == 2:
            raw = ungroup(raw)
        if len(raw) != size:
            raise BadXetObject(reason=N_("a chunk's size is not the one its header gives"))
        yield raw


def _folder(store: ChunkStore, member: int) -> Path:
    # Per member: a xorb is named by a hash the hub does not recompute, so one member's
    # upload can never stand in for another's.
    folder = store.scratch() / "xet" / str(member)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _save_xorb(store: ChunkStore, member: int, name: str, received: Path) -> bool:
    """Decodes the xorb received at `received` into the member's folder: the raw chunks one
    after another, then their lengths and their count (a footer, so that nothing is held)."""
    folder = _folder(store, member)
    target = folder / f"{name}.xorb"
    if target.exists():
        return False
    descriptor, scratch = tempfile.mkstemp(dir=folder, prefix=".xorb-")
    lengths: list[int] = []
    try:
        with os.fdopen(descriptor, "wb") as out, received.open("rb") as source:
            for chunk in _chunks(source):
                out.write(chunk)
                lengths.append(len(chunk))
            if not lengths:
                raise BadXetObject(reason=N_("a xorb holds no chunk"))
            out.write(struct.pack(f"<{len(lengths)}I", *lengths))
            out.write(struct.pack("<I", len(lengths)))
        os.replace(scratch, target)
    finally:
        Path(scratch).unlink(missing_ok=True)
    return True


def _read_chunks(folder: Path, name: str, start: int, end: int) -> Iterator[bytes]:
    """The raw chunks `start` to `end` (exclusive) of a stored xorb, one at a time."""
    path = folder / f"{name}.xorb"
    if not path.is_file():
        raise BadXetObject(reason=N_("a shard names a xorb that was not uploaded"))
    with path.open("rb") as handle:
        handle.seek(-4, os.SEEK_END)
        (count,) = struct.unpack("<I", handle.read(4))
        handle.seek(-4 - 4 * count, os.SEEK_END)
        lengths = struct.unpack(f"<{count}I", handle.read(4 * count))
        if not 0 <= start < end <= count:
            raise BadXetObject(reason=N_("a shard names chunks a xorb does not hold"))
        handle.seek(sum(lengths[:start]))
        for length in lengths[start:end]:
            yield handle.read(length)


def hash_name(raw: bytes) -> str:
    """A 32-byte Xet hash as the protocol writes it in paths: each 8-byte word little-endian."""
    return "".join(raw[i : i + 8][::-1].hex() for i in range(0, 32, 8))


# --- shards: each file's terms (xorb, chunk range) and its SHA-256 ----------------------


@dataclass(frozen=True, slots=True)
class XetFile:
    terms: list[tuple[str, int, int]]  # xorb name, first chunk, end chunk (exclusive)
    sha256: str


def files_of(shard: bytes) -> list[XetFile]:
    """The files a shard uploads (its file info section; the xorb list after it is unused)."""
    if len(shard) < 48 or struct.unpack_from("<Q", shard, 32)[0] != 2:
        raise BadXetObject(reason=N_("the shard's header is not a version 2 shard header"))
    files: list[XetFile] = []
    i = 48
    while True:
        if i + 48 > len(shard):
            raise BadXetObject(reason=N_("the shard ends inside its file section"))
        if shard[i : i + 32] == BOOKEND:
            return files
        flags, count = struct.unpack_from("<II", shard, i + 32)
        i += 48
        terms = []
        for _term in range(count):
            xorb = hash_name(shard[i : i + 32])
            first, end = struct.unpack_from("<II", shard, i + 40)
            terms.append((xorb, first, end))
            i += 48
        if flags & WITH_VERIFICATION:
            i += 48 * count
        sha = ""
        if flags & WITH_METADATA:
            sha = hash_name(shard[i : i + 32])  # stored as the protocol stores its hashes
            i += 48
        if not sha:
            raise BadXetObject(reason=N_("a file in the shard has no SHA-256"))
        files.append(XetFile(terms, sha))


def _rebuild(db: Db, store: ChunkStore, grant: Grant, shard: bytes, limit: int) -> int:
    """Rebuilds, checks and ingests every file of the shard; returns how many."""
    folder = _folder(store, grant.member)
    repo = repos.get(db, grant.kind, grant.owner, grant.name, missing_ok=True)
    if repo is None or repo.member_id != grant.member:
        raise BadXetToken()
    wanted = files_of(shard)
    for item in wanted:
        # Rebuilding and hashing a file takes as long as its size: no transaction (on SQLite,
        # the write lock that `repos.get` began) may stay open meanwhile, or every other
        # writer, the round ticker too, waits and fails with "database is locked".
        db.rollback()
        descriptor, scratch = tempfile.mkstemp(dir=store.scratch(), prefix=".xet-")
        path = Path(scratch)
        digest = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(descriptor, "wb") as out:
                for xorb, first, end in item.terms:
                    for data in _read_chunks(folder, xorb, first, end):
                        size += len(data)
                        if size > limit:
                            raise TooLarge(limit=limit)
                        digest.update(data)
                        out.write(data)
            if digest.hexdigest() != item.sha256:
                raise BadXetObject(reason=N_("a rebuilt file does not have the SHA-256 given"))
            store.ingest(db, path, item.sha256)
            repos.possess(db, repo, item.sha256)  # sent for this repository: it may name it
            db.commit()
            metrics.count("upload")
            metrics.moved("in", size)
        finally:
            path.unlink(missing_ok=True)
    return len(wanted)


@router.get(CAS + "/v1/chunks/{prefix}/{name}")
def dedup_query(prefix: str, name: str, request: Request) -> Response:
    """Global deduplication is not offered: every chunk is answered as unknown."""
    bearer(request)
    return Response(status_code=404)


@router.head(CAS + "/v1/xorbs/{prefix}/{name}")
def xorb_exists(prefix: str, name: str, request: Request) -> Response:
    grant = bearer(request)
    if not HASH.match(name):
        return Response(status_code=400)
    path = _folder(open_store(request.app.state.settings), grant.member) / f"{name}.xorb"
    if not path.is_file():
        return Response(status_code=404)
    return Response(status_code=200, headers={"Content-Length": str(path.stat().st_size)})


@router.post(CAS + "/v1/xorbs/{prefix}/{name}")
async def upload_xorb(prefix: str, name: str, request: Request) -> JSONResponse:
    """One xorb: its chunks are decompressed and kept until a shard names them."""
    grant = bearer(request)
    if not HASH.match(name):
        raise BadXetObject(reason=N_("the xorb's name is not a hash"))
    store = open_store(request.app.state.settings)
    descriptor, scratch = tempfile.mkstemp(dir=_folder(store, grant.member), prefix=".in-")
    received = Path(scratch)
    try:
        taken = 0
        with os.fdopen(descriptor, "wb") as out:
            async for piece in request.stream():
                taken += len(piece)
                if taken > XORB_MAX_BYTES:
                    raise TooLarge(limit=XORB_MAX_BYTES)
                out.write(piece)
        inserted = await run_in_threadpool(_save_xorb, store, grant.member, name, received)
    finally:
        received.unlink(missing_ok=True)
    return JSONResponse({"was_inserted": inserted})


@router.post(CAS + "/v1/shards")
async def upload_shard(request: Request, db: Db) -> JSONResponse:
    """The shard: the files it lists are rebuilt from the xorbs and stored."""
    grant = bearer(request)
    settings = request.app.state.settings
    body = bytearray()
    async for piece in request.stream():
        body += piece
        if len(body) > XORB_MAX_BYTES:
            raise TooLarge(limit=XORB_MAX_BYTES)
    store = open_store(settings)
    await run_in_threadpool(_rebuild, db, store, grant, bytes(body), settings.max_upload_bytes)
    return JSONResponse({"result": 1})
