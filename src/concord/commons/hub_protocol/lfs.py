"""The Git LFS batch API, as `huggingface_hub` uploads large files: the basic transfer (one
PUT), and the Hub's multipart transfer above `MULTIPART_ABOVE` bytes (parts PUT one by one,
then a completion that joins them), so that a failed part is sent again, not the whole file.

The batch answer gives each object an upload URL on this hub. The client PUTs the bytes there
without its token (as it would to a presigned S3 URL), so the URL carries its own short-lived
authority: the object, its size, the repository and the member, signed with the hub's key.
The bytes are hashed as they arrive, then cut into the chunk store exactly as a
`concord push` upload is; they stay invisible until a commit names them (and the commit runs
the formats gate, knowing the file's name)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from concord import inflight, metrics
from concord.commons import repositories as repos
from concord.commons.chunks import ChunkStore, open_store
from concord.commons.hub_protocol.common import writable
from concord.commons.tables import Blob
from concord.errors import N_, Forbidden, Invalid, TooLarge
from concord.http import Db, allow_large_bodies
from concord.hubkey import load_or_create
from concord.members.auth import CurrentPerson
from concord.validation import Id, QueryId, QuerySize, Timestamp

router = APIRouter(include_in_schema=False)
UPLOADS = "/api/commons/lfs/"
allow_large_bodies(UPLOADS)
OID = re.compile(r"^[0-9a-f]{64}$")
VALID_S = 3600  # an upload URL lives an hour: enough for a large file on a slow line
MULTIPART_ABOVE = 256 * 1024 * 1024  # larger objects travel in parts (the client asks for it)
PART_BYTES = 64 * 1024 * 1024
LFS_JSON = "application/vnd.git-lfs+json"


class BadUploadUrl(Forbidden):
    code = "commons.lfs_bad_url"
    message = N_("This upload address is not valid or has expired; ask the batch API again.")


class UploadMismatch(Invalid):
    code = "commons.lfs_mismatch"
    message = N_(
        "The uploaded bytes ({size} bytes, SHA-256 {actual}) are not the object announced."
    )


def _sign(request: Request, claim: str) -> str:
    key = load_or_create(request.app.state.settings)
    return base64.urlsafe_b64encode(key.sign(claim.encode())).decode().rstrip("=")


def _verify(request: Request, claim: str, signature: str) -> None:
    key = load_or_create(request.app.state.settings).public_key()
    try:
        key.verify(
            base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)), claim.encode()
        )
    except (InvalidSignature, ValueError) as exc:
        raise BadUploadUrl() from exc


def _check_address(
    request: Request, oid: str, size: int, repo: str, member: int, expires: int, sig: str
) -> None:
    """Refuses an upload address that has expired, names no SHA-256, or was not signed by
    this hub for exactly this object, size, repository and member."""
    if expires < time.time() or not OID.match(oid):
        raise BadUploadUrl()
    _verify(request, _claim(oid, size, repo, member, expires), sig)


def _claim(oid: str, size: int, repo: str, member: int, expires: int) -> str:
    return f"lfs-upload\n{oid}\n{size}\n{repo}\n{member}\n{expires}"


async def _batch(
    request: Request, db: Db, person: CurrentPerson, kind: str, owner: str, name: str
) -> Response:
    try:
        body = json.loads(await request.body())
        objects = [(str(o["oid"]), int(o["size"])) for o in body.get("objects", [])]
    except (ValueError, KeyError, TypeError, AttributeError):
        return JSONResponse({"message": "malformed batch request"}, status_code=422)
    multipart = "multipart" in (body.get("transfers") or [])
    if body.get("operation") != "upload":
        return JSONResponse({"message": "only uploads go through the batch API"}, status_code=422)

    def run() -> dict[str, Any]:
        _repo, member = writable(db, person, kind, owner, name)
        limit = request.app.state.settings.max_upload_bytes
        # Stored bytes are not sent again, unless only repositories this member may not read
        # hold them: then the bytes themselves are the proof of having them (`may_name`).
        known = {
            b.sha256: b.size
            for b in db.query(Blob).filter(Blob.sha256.in_([oid for oid, _s in objects])).all()
            if repos.may_name(db, member, b.sha256)
        }
        db.rollback()
        base = str(request.base_url).rstrip("/")
        expires = int(time.time()) + VALID_S
        answers: list[dict[str, Any]] = []
        for oid, size in objects:
            if not OID.match(oid) or size < 0:
                answers.append(
                    {"oid": oid, "size": size, "error": {"code": 422, "message": "bad object id"}}
                )
                continue
            if size > limit:
                answers.append(
                    {
                        "oid": oid,
                        "size": size,
                        "error": {"code": 413, "message": f"larger than {limit} bytes"},
                    }
                )
                continue
            if known.get(oid) == size:
                answers.append({"oid": oid, "size": size})  # stored already: nothing to send
                continue
            reference = f"{kind}/{owner}/{name}"
            signature = _sign(request, _claim(oid, size, reference, member.id, expires))
            address = f"{base}{UPLOADS}{kind}/{owner}/{name}/{oid}"
            query = f"?size={size}&member={member.id}&expires={expires}&sig={signature}"
            upload: dict[str, Any] = {"href": address + query, "expires_in": VALID_S}
            if multipart and size > MULTIPART_ABOVE:
                count = -(-size // PART_BYTES)
                upload = {
                    "href": f"{address}/complete{query}",
                    "expires_in": VALID_S,
                    "header": {
                        "chunk_size": str(PART_BYTES),
                        **{str(n): f"{address}/part/{n}{query}" for n in range(1, count + 1)},
                    },
                }
            answers.append(
                {
                    "oid": oid,
                    "size": size,
                    "authenticated": True,
                    "actions": {
                        "upload": upload,
                        "verify": {"href": f"{base}{UPLOADS}{kind}/{owner}/{name}/verify"},
                    },
                }
            )
        parted = any("header" in a.get("actions", {}).get("upload", {}) for a in answers)
        return {
            "transfer": "multipart" if parted else "basic",
            "objects": answers,
            "hash_algo": "sha256",
        }

    answer = await run_in_threadpool(run)
    return JSONResponse(answer, media_type=LFS_JSON)


@router.post("/{owner}/{name}.git/info/lfs/objects/batch")
async def model_batch(
    owner: str, name: str, request: Request, db: Db, person: CurrentPerson
) -> Response:
    return await _batch(request, db, person, "model", owner, name)


@router.post("/datasets/{owner}/{name}.git/info/lfs/objects/batch")
async def dataset_batch(
    owner: str, name: str, request: Request, db: Db, person: CurrentPerson
) -> Response:
    return await _batch(request, db, person, "dataset", owner, name)


async def _receive(request: Request, descriptor: int, member: int, limit: int) -> tuple[int, str]:
    """Streams the body into the open file `descriptor` under the member's allowance of bytes
    in flight (the same as `concord push`'s uploads), stopping once past `limit`: the bytes
    received and their SHA-256."""
    settings = request.app.state.settings
    digest = hashlib.sha256()
    received = 0
    with (
        os.fdopen(descriptor, "wb") as out,
        inflight.allowance(member, settings.member_upload_bytes) as quota,
    ):
        async for piece in request.stream():
            received += len(piece)
            if received > limit:
                break
            quota.take(len(piece))
            digest.update(piece)
            out.write(piece)
    return received, digest.hexdigest()


@router.put(UPLOADS + "{kind}/{owner}/{name}/{oid}")
async def upload(
    kind: str,
    owner: str,
    name: str,
    oid: str,
    request: Request,
    db: Db,
    size: QuerySize,
    member: QueryId,
    expires: Timestamp,
    sig: str,
) -> Response:
    """The bytes of one object, PUT by the client to the address the batch API signed."""
    _check_address(request, oid, size, f"{kind}/{owner}/{name}", member, expires, sig)
    settings = request.app.state.settings
    if size > settings.max_upload_bytes:
        raise TooLarge(limit=settings.max_upload_bytes)
    store = open_store(settings)
    descriptor, scratch = tempfile.mkstemp(dir=store.scratch(), prefix=".lfs-")
    path = Path(scratch)
    try:
        received, sha256 = await _receive(request, descriptor, member, size)
        if received != size or sha256 != oid:
            raise UploadMismatch(size=received, actual=sha256)

        def ingest() -> None:
            store.ingest(db, path, oid)
            repo = repos.get(db, kind, owner, name, missing_ok=True)
            if repo is not None and repo.member_id == member:
                repos.possess(db, repo, oid)  # sent for this repository: its commit may name it
            db.commit()

        await run_in_threadpool(ingest)
        metrics.count("upload")
        metrics.moved("in", received)
    finally:
        path.unlink(missing_ok=True)
    return Response(status_code=200)


@router.post(UPLOADS + "{kind}/{owner}/{name}/verify")
async def verify(
    kind: str, owner: str, name: str, request: Request, db: Db, person: CurrentPerson
) -> Response:
    """Confirms the object is stored whole (the client calls this after its PUT)."""
    try:
        body = json.loads(await request.body())
        oid, size = str(body["oid"]), int(body["size"])
    except (ValueError, KeyError, TypeError):
        return JSONResponse({"message": "malformed verify request"}, status_code=422)

    def run() -> None:
        writable(db, person, kind, owner, name)
        blob = db.get(Blob, oid)
        db.rollback()
        if blob is None or blob.size != size:
            raise UploadMismatch(size=size, actual=oid)

    await run_in_threadpool(run)
    return Response(content=b"{}", media_type=LFS_JSON)


# --- the multipart transfer: parts kept in scratch until the completion joins them ---------


def _parts(store: ChunkStore, member: int, oid: str) -> Path:
    folder = store.scratch() / "lfs-parts" / f"{member}-{oid}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _part_size(size: int, number: int) -> int:
    """The bytes part `number` (from 1) of an object of `size` bytes must hold."""
    return max(0, min(PART_BYTES, size - PART_BYTES * (number - 1)))


@router.put(UPLOADS + "{kind}/{owner}/{name}/{oid}/part/{number}")
async def upload_part(
    kind: str,
    owner: str,
    name: str,
    oid: str,
    number: Id,
    request: Request,
    size: QuerySize,
    member: QueryId,
    expires: Timestamp,
    sig: str,
) -> Response:
    """One part of a multipart upload, at the address the batch API signed; its ETag is the
    part's SHA-256, which the completion names."""
    _check_address(request, oid, size, f"{kind}/{owner}/{name}", member, expires, sig)
    expected = _part_size(size, number)
    if expected == 0:
        raise BadUploadUrl()
    settings = request.app.state.settings
    store = open_store(settings)
    folder = _parts(store, member, oid)
    descriptor, scratch = tempfile.mkstemp(dir=folder, prefix=".part-")
    try:
        received, sha256 = await _receive(request, descriptor, member, expected)
        if received != expected:
            raise UploadMismatch(size=received, actual=sha256)
        os.replace(scratch, folder / str(number))
    finally:
        Path(scratch).unlink(missing_ok=True)
    metrics.moved("in", received)
    return Response(status_code=200, headers={"ETag": sha256})


@router.post(UPLOADS + "{kind}/{owner}/{name}/{oid}/complete")
async def complete(
    kind: str,
    owner: str,
    name: str,
    oid: str,
    request: Request,
    db: Db,
    size: QuerySize,
    member: QueryId,
    expires: Timestamp,
    sig: str,
) -> Response:
    """Joins the parts in order, checks each against the ETag the client names and the whole
    against the object's SHA-256, then stores it as a basic upload is stored."""
    _check_address(request, oid, size, f"{kind}/{owner}/{name}", member, expires, sig)
    try:
        body = json.loads(await request.body())
        tags = {int(p["partNumber"]): str(p["etag"]).strip('"') for p in body["parts"]}
    except (ValueError, KeyError, TypeError):
        return JSONResponse({"message": "malformed completion request"}, status_code=422)
    store = open_store(request.app.state.settings)
    folder = _parts(store, member, oid)
    count = -(-size // PART_BYTES)

    def join() -> None:
        if sorted(tags) != list(range(1, count + 1)):
            raise UploadMismatch(size=0, actual=oid)
        descriptor, scratch = tempfile.mkstemp(dir=store.scratch(), prefix=".lfs-")
        whole = hashlib.sha256()
        joined = 0
        try:
            with os.fdopen(descriptor, "wb") as out:
                for number in range(1, count + 1):
                    part = hashlib.sha256()
                    path = folder / str(number)
                    if not path.is_file():
                        raise UploadMismatch(size=joined, actual=oid)
                    with path.open("rb") as handle:
                        for block in iter(lambda: handle.read(1 << 20), b""):
                            part.update(block)
                            whole.update(block)
                            out.write(block)
                            joined += len(block)
                    if part.hexdigest() != tags[number]:
                        raise UploadMismatch(size=joined, actual=part.hexdigest())
            if joined != size or whole.hexdigest() != oid:
                raise UploadMismatch(size=joined, actual=whole.hexdigest())
            store.ingest(db, Path(scratch), oid)
            repo = repos.get(db, kind, owner, name, missing_ok=True)
            if repo is not None and repo.member_id == member:
                repos.possess(db, repo, oid)
            db.commit()
        finally:
            Path(scratch).unlink(missing_ok=True)
        for path in folder.iterdir():
            path.unlink(missing_ok=True)
        folder.rmdir()

    await run_in_threadpool(join)
    metrics.count("upload")
    return Response(status_code=200)
