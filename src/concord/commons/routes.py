"""HTTP API of the commons: Concord's own (upload, commit, chunk lists) and the subset of the
Hugging Face Hub API that the `huggingface_hub` client uses to read."""

from __future__ import annotations

import hashlib
import itertools
import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Header, Request, Response, status
from fastapi.responses import RedirectResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from concord import inflight, metrics
from concord.commons import access, likes
from concord.commons import repositories as repos
from concord.commons.chunks import ChunkStore, UnknownChunk, open_store
from concord.commons.formats import check_content, check_path
from concord.commons.tables import Blob, Repository, Revision
from concord.errors import N_, Invalid, TooLarge
from concord.http import Db, allow_large_bodies
from concord.members.auth import CurrentPerson, OptionalPerson
from concord.members.people import acting_member
from concord.members.tables import Member, Person
from concord.validation import MAX_INDEX

router = APIRouter(tags=["commons"])
UPLOADS = "/api/commons/uploads"
allow_large_bodies(UPLOADS)


class HashMismatch(Invalid):
    code = "commons.hash_mismatch"
    message = N_("The upload's SHA-256 is {actual}, not the {expected} announced.")


class Truncated(Invalid):
    code = "commons.truncated"
    message = N_("The upload ended after {received} of {expected} bytes; nothing was stored.")


class RepoCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    owner: str = Field(description="Your member's handle")
    name: str
    kind: str = Field(default="model", description="model or dataset")
    licence: str = Field(description="SPDX identifier, e.g. apache-2.0")


class CommitCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    files: dict[str, str] = Field(description="path → SHA-256 of an uploaded blob")
    delete: list[str] = Field(default_factory=list)
    message: str = Field(default="", max_length=2000)
    parent: str | None = Field(default=None, description="Expected current revision")
    provenance: dict[str, Any] | None = None


def store(request: Request) -> ChunkStore:
    return open_store(request.app.state.settings)


def _owner_member(db: Db, person: Person, owner: str) -> Member:
    return acting_member(db, person, owner)


def _check_uploader(db: Session, person: Person, repository: str) -> tuple[int, int | None]:
    """The uploading member, and the repository (`kind/owner/name`) the bytes are for, if named:
    it must be one of that member's."""
    if not repository:
        member_id = acting_member(db, person).id
        db.commit()
        return member_id, None
    kind, _sep, reference = repository.partition("/")
    owner, _sep, name = reference.partition("/")
    member = acting_member(db, person, owner)
    repo = repos.require(db, kind, owner, name)
    answer = member.id, repo.id
    db.commit()
    return answer


def _ingest(
    db: Session,
    chunk_store: ChunkStore,
    filename: str,
    path: Path,
    sha256: str,
    repository_id: int | None,
) -> tuple[Blob, int]:
    check_content(filename, path)
    blob = chunk_store.ingest(db, path, sha256)
    count = len(blob.chunks)  # a deferred column: read before the commit ends the transaction
    if repository_id is not None:  # the bytes were sent: the member may publish them there
        repo = db.get(Repository, repository_id)
        if repo is not None:
            repos.possess(db, repo, blob.sha256)
    db.commit()
    return blob, count


@router.post(UPLOADS, status_code=status.HTTP_201_CREATED)
async def upload(
    request: Request,
    db: Db,
    person: CurrentPerson,
    filename: str,
    repository: str = "",
    x_content_sha256: Annotated[str | None, Header()] = None,
    content_length: Annotated[int | None, Header(ge=0, le=MAX_INDEX)] = None,
) -> dict[str, Any]:
    """Uploads one file's content (the body); it stays invisible until a commit names it.
    Name the repository it is for (`repository=kind/owner/name`) to publish content that other
    repositories hold behind a gate: sending the bytes proves you have them."""
    # Database work runs in worker threads and commits before the body streams in: on SQLite
    # an open transaction holds the write lock, and the event loop must never wait for it.
    # Who sends it and under which name is settled before a byte is spooled.
    member_id, repository_id = await run_in_threadpool(_check_uploader, db, person, repository)
    check_path(filename)
    settings = request.app.state.settings
    chunk_store = store(request)
    descriptor, name = tempfile.mkstemp(dir=chunk_store.scratch(), prefix=".upload-")
    path = Path(name)
    sha = hashlib.sha256()
    received = 0
    try:
        with (
            os.fdopen(descriptor, "wb") as out,
            inflight.allowance(member_id, settings.member_upload_bytes) as quota,
        ):
            async for piece in request.stream():
                received += len(piece)
                if received > settings.max_upload_bytes:
                    raise TooLarge(limit=settings.max_upload_bytes)
                quota.take(len(piece))
                sha.update(piece)
                out.write(piece)
        if content_length is not None and received != content_length:
            raise Truncated(received=received, expected=content_length)
        if x_content_sha256 and x_content_sha256.lower() != sha.hexdigest():
            raise HashMismatch(actual=sha.hexdigest(), expected=x_content_sha256)
        # Checking and cutting a large file takes seconds: on a worker thread, with the commit,
        # so the event loop goes on serving other requests meanwhile.
        blob, count = await run_in_threadpool(
            _ingest, db, chunk_store, filename, path, sha.hexdigest(), repository_id
        )
        metrics.count("upload")
        metrics.moved("in", received)
    finally:
        path.unlink(missing_ok=True)
    return {"sha256": blob.sha256, "size": blob.size, "chunks": count}


@router.post("/api/commons/repos", status_code=status.HTTP_201_CREATED)
def create_repo(body: RepoCreate, db: Db, person: CurrentPerson) -> dict[str, Any]:
    """Creates a model or dataset repository owned by your member."""
    member = _owner_member(db, person, body.owner)
    repo = repos.create(db, member, kind=body.kind, name=body.name, licence=body.licence)
    db.commit()
    return {"id": repos.repo_id(repo), "kind": repo.kind, "licence": repo.licence}


@router.post(
    "/api/commons/repos/{kind}/{owner}/{name}/commits", status_code=status.HTTP_201_CREATED
)
def commit(
    kind: str,
    owner: str,
    name: str,
    body: CommitCreate,
    db: Db,
    request: Request,
    person: CurrentPerson,
) -> dict[str, Any]:
    """Publishes uploaded blobs as a new revision on `main`. Logged."""
    member = _owner_member(db, person, owner)
    repo = repos.require(db, kind, owner, name)
    card_text = None
    if "README.md" in body.files:
        blob = db.get(Blob, body.files["README.md"])
        if blob is None:
            raise repos.UnknownBlob(sha256=body.files["README.md"])
        card_text = b"".join(store(request).stream(db, blob)).decode("utf-8", "replace")
    revision = repos.commit(
        db,
        repo,
        author=member,
        store=store(request),
        files_sha=body.files,
        delete=body.delete,
        message=body.message,
        parent=body.parent,
        provenance=body.provenance,
        card_text=card_text,
    )
    db.commit()
    return {"revision": revision.sha, "conformance": revision.conformance}


@router.get("/api/commons/repos")
def list_repos(
    db: Db,
    person: OptionalPerson,
    kind: str = "",
    q: str = "",
    licence: str = "",
    language: str = "",
    task: str = "",
) -> list[dict[str, Any]]:
    """Repositories, searchable by name, licence, language and task."""
    return [
        _summary(r, rev)
        for r, rev in repos.list_repositories(
            db, kind=kind, query=q, licence=licence, language=language, task=task, person=person
        )
    ]


def _summary(repo: Repository, rev: Revision | None) -> dict[str, Any]:
    return {
        "id": repos.repo_id(repo),
        "kind": repo.kind,
        "licence": repo.licence,
        "revision": rev.sha if rev else None,
        "card": rev.card if rev else {},
        "mirrored_from": repo.mirrored_from,
    }


@router.get("/api/commons/repos/{kind}/{owner}/{name}/revisions/{revision}")
def revision_detail(
    kind: str, owner: str, name: str, revision: str, db: Db, person: OptionalPerson
) -> dict[str, Any]:
    """A revision with every file's size, SHA-256 and chunk list (for `concord pull`), and
    the root of that list where the revision's log entry records one."""
    repo = repos.seen(db, kind, owner, name, person)
    rev = repos.resolve(db, repo, revision)
    access.require_read(db, repo, rev, person)
    roots = repos.logged_roots(db, rev)
    return {
        "id": repos.repo_id(repo),
        "kind": repo.kind,
        "revision": rev.sha,
        "parent": rev.parent,
        "message": rev.message,
        "card": rev.card,
        "provenance": rev.provenance,
        "conformance": rev.conformance,
        "licence": repo.licence,
        "mirrored_from": repo.mirrored_from,
        "created_at": rev.created_at.isoformat(),
        "log_index": rev.log_index,
        "files": [
            {
                "path": f.path,
                "size": f.blob.size,
                "sha256": f.blob.sha256,
                "chunks": f.blob.chunks,
                **({"chunk_root": roots[f.path]} if f.path in roots else {}),
            }
            for f in repos.files(db, rev)
        ],
    }


@router.get("/api/commons/chunks/{name}")
def chunk(name: str, blob: str, db: Db, request: Request, person: OptionalPerson) -> Response:
    """One chunk by its BLAKE3 name, within the blob (SHA-256) that holds it: served to whoever
    may read a repository holding that blob, as the blob's bytes are."""
    held = access.require_blob(db, blob, person)
    if name not in {chunk_name for chunk_name, _length in held.chunks}:
        raise UnknownChunk(chunk=name[:64])
    return Response(store(request).read_chunk(db, name), media_type="application/octet-stream")


@router.get("/api/commons/content/{sha256}", operation_id="commons_content")
@router.head("/api/commons/content/{sha256}", operation_id="commons_content_head")
def content(
    sha256: str,
    db: Db,
    request: Request,
    person: OptionalPerson,
    repo: str = "",
    path: str = "",
    kind: str = "model",
    commit: str = "",
    range_header: Annotated[str | None, Header(alias="Range")] = None,
) -> Response:
    """A file's bytes by SHA-256, with HTTP ranges; where the Hub-compatible resolve leads.
    Served to whoever may read a repository holding them (gated and private ones guard theirs)."""
    blob = access.require_blob(db, sha256, person)
    start, end = 0, blob.size
    code = 200
    if range_header and range_header.startswith("bytes="):
        first, _sep, last = range_header[6:].split(",")[0].partition("-")
        try:
            if first:
                start = int(first)
                end = min(blob.size, int(last) + 1) if last else blob.size
            else:
                start = max(0, blob.size - int(last))
        except ValueError:
            start, end = 0, blob.size
        if start >= blob.size or end <= start:
            return Response(status_code=416, headers={"Content-Range": f"bytes */{blob.size}"})
        code = 206
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": f'"{blob.sha256}"',
        "X-Linked-Etag": f'"{blob.sha256}"',
        "X-Linked-Size": str(blob.size),
        "Content-Length": str(end - start),
    }
    if repos.SHA.match(commit):
        # The Hub client follows same-host redirects and reads the commit from the last hop.
        headers["X-Repo-Commit"] = commit
    if code == 206:
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{blob.size}"
    if request.method == "HEAD":
        return Response(status_code=code, headers=headers)
    if start == 0 and repo:
        _count(db, repo, kind, path, person)
    body = store(request).stream(db, blob, start, end)
    db.rollback()  # end the read transaction before the bytes flow
    # The first block is read (and verified) before the status line goes out, so a corrupt or
    # unreachable store answers with its coded error rather than a cut-off 200.
    opening = next(body, memoryview(b""))
    metrics.count("download")
    return StreamingResponse(
        _counted(itertools.chain((opening,), body)),
        status_code=code,
        headers=headers,
        media_type="application/octet-stream",
    )


def _counted(body: Iterator[memoryview]) -> Iterator[memoryview]:
    """Counts bytes as they are sent, so an interrupted download counts what really left."""
    for piece in body:
        metrics.moved("out", len(piece))
        yield piece


def _count(db: Db, reference: str, kind: str, path: str, person: Person | None) -> None:
    owner, _sep, name = reference.partition("/")
    repository = repos.get(db, kind, owner, name, missing_ok=True)
    if repository is None:
        return
    country = None
    if person is not None and person.member is not None:
        country = person.member.country_code
    repos.count_download(db, repository, path, country)
    db.commit()


# --- the Hugging Face Hub API, read side -------------------------------------------------


def _sibling(path: str, blob: Blob, readable: bool = True) -> dict[str, Any]:
    if not readable:  # a gated file's hash would be its address: withheld
        return {"rfilename": path, "size": blob.size}
    return {
        "rfilename": path,
        "size": blob.size,
        "blobId": _git_oid(blob),
        "lfs": {"size": blob.size, "sha256": blob.sha256, "pointerSize": 134},
    }


def _git_oid(blob: Blob) -> str:
    # The Hub names non-LFS blobs by git's SHA-1 of the content; we serve every file as LFS
    # and use the SHA-256's first 40 hex digits as a stable blob id.
    return blob.sha256[:40]


def _hub_time(moment: datetime) -> str:
    """The Hub's timestamp format: UTC with milliseconds and a Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _info(
    db: Db, kind: str, owner: str, name: str, revision: str, person: Person | None = None
) -> dict[str, Any]:
    repo = repos.seen(db, kind, owner, name, person)
    rev = repos.resolve(db, repo, revision)
    readable = access.may_read(db, repo, rev, person)
    card = rev.card
    tags = [f"license:{card.get('license', repo.licence)}"]
    language = card.get("language")
    tags += [
        f"language:{lang}"
        for lang in ([language] if isinstance(language, str) else list(language or []))
    ]
    return {
        "_id": f"{repo.id}",
        "id": repos.repo_id(repo),
        "modelId": repos.repo_id(repo),
        "author": repo.owner,
        "sha": rev.sha,
        "lastModified": _hub_time(rev.created_at),
        "createdAt": _hub_time(repo.created_at),
        "private": repo.private,
        "gated": access.gate(card) or False,
        "disabled": False,
        # As the Hub counts: the last 30 days, and all time; by country for the dashboard.
        "downloads": repos.downloads_of(db, repo, since=datetime.now(UTC) - timedelta(days=30)),
        "downloadsAllTime": repos.downloads_of(db, repo),
        "likes": likes.count(db, repo),
        "tags": tags,
        "cardData": card,
        "pipeline_tag": card.get("pipeline_tag"),
        "library_name": card.get("library_name"),
        "siblings": [_sibling(f.path, f.blob, readable) for f in repos.files(db, rev)],
    }


@router.get("/api/models/{owner}/{name}", include_in_schema=False)
def model_info(owner: str, name: str, db: Db, person: OptionalPerson) -> dict[str, Any]:
    return _info(db, "model", owner, name, "main", person)


@router.get("/api/models/{owner}/{name}/revision/{revision}", include_in_schema=False)
def model_info_at(
    owner: str, name: str, revision: str, db: Db, person: OptionalPerson
) -> dict[str, Any]:
    return _info(db, "model", owner, name, revision, person)


@router.get("/api/datasets/{owner}/{name}", include_in_schema=False)
def dataset_info(owner: str, name: str, db: Db, person: OptionalPerson) -> dict[str, Any]:
    return _info(db, "dataset", owner, name, "main", person)


@router.get("/api/datasets/{owner}/{name}/revision/{revision}", include_in_schema=False)
def dataset_info_at(
    owner: str, name: str, revision: str, db: Db, person: OptionalPerson
) -> dict[str, Any]:
    return _info(db, "dataset", owner, name, revision, person)


def _tree(
    db: Db,
    kind: str,
    owner: str,
    name: str,
    revision: str,
    path: str,
    recursive: bool,
    person: Person | None = None,
) -> list[dict[str, Any]]:
    repo = repos.seen(db, kind, owner, name, person)
    rev = repos.resolve(db, repo, revision)
    readable = access.may_read(db, repo, rev, person)
    prefix = f"{path.strip('/')}/" if path.strip("/") else ""
    entries: list[dict[str, Any]] = []
    folders: set[str] = set()
    for f in repos.files(db, rev):
        if not f.path.startswith(prefix):
            continue
        rest = f.path[len(prefix) :]
        if "/" in rest and not recursive:
            folders.add(prefix + rest.split("/")[0])
            continue
        if recursive:
            parts = rest.split("/")[:-1]
            for depth in range(1, len(parts) + 1):
                folders.add(prefix + "/".join(parts[:depth]))
        entry: dict[str, Any] = {"type": "file", "path": f.path, "size": f.blob.size}
        if readable:
            entry["oid"] = _git_oid(f.blob)
            entry["lfs"] = {"oid": f.blob.sha256, "size": f.blob.size, "pointerSize": 134}
        else:  # gated: no hash, which would be the file's address
            entry["oid"] = hashlib.sha1(f"{rev.sha}/{f.path}".encode()).hexdigest()  # noqa: S324
        entries.append(entry)
    entries += [
        {"type": "directory", "path": d, "oid": hashlib.sha1(d.encode()).hexdigest()}  # noqa: S324
        for d in sorted(folders)
    ]
    return entries


@router.get("/api/models/{owner}/{name}/tree/{revision}", include_in_schema=False)
@router.get("/api/models/{owner}/{name}/tree/{revision}/{path:path}", include_in_schema=False)
def model_tree(
    owner: str,
    name: str,
    revision: str,
    db: Db,
    person: OptionalPerson,
    path: str = "",
    recursive: bool = False,
) -> list[dict[str, Any]]:
    return _tree(db, "model", owner, name, revision, path, recursive, person)


@router.get("/api/datasets/{owner}/{name}/tree/{revision}", include_in_schema=False)
@router.get("/api/datasets/{owner}/{name}/tree/{revision}/{path:path}", include_in_schema=False)
def dataset_tree(
    owner: str,
    name: str,
    revision: str,
    db: Db,
    person: OptionalPerson,
    path: str = "",
    recursive: bool = False,
) -> list[dict[str, Any]]:
    return _tree(db, "dataset", owner, name, revision, path, recursive, person)


def _resolve(
    request: Request,
    db: Db,
    kind: str,
    owner: str,
    name: str,
    revision: str,
    path: str,
    person: Person | None = None,
) -> Response:
    repo = repos.seen(db, kind, owner, name, person)
    rev = repos.resolve(db, repo, revision)
    access.require_read(db, repo, rev, person)
    blob = repos.file(db, repo, rev, path)
    # A path, not an absolute URL: `request.base_url` names the Host the client sent, which
    # anyone can forge; clients resolve the path against the hub they asked.
    base = urlsplit(request.app.state.settings.public_url).path.rstrip("/")
    location = (
        f"{base}/api/commons/content/{blob.sha256}?repo={owner}/{name}&kind={kind}"
        f"&commit={rev.sha}&path={quote(path)}"
    )
    headers = {
        "X-Repo-Commit": rev.sha,
        "X-Linked-Etag": f'"{blob.sha256}"',
        "X-Linked-Size": str(blob.size),
        "ETag": f'"{blob.sha256}"',
        "Location": location,
        "Accept-Ranges": "bytes",
    }
    # As the Hub does for large files: a redirect to where the bytes are served.
    return RedirectResponse(location, status_code=302, headers=headers)


@router.api_route(
    "/{owner}/{name}/resolve/{revision}/{path:path}",
    methods=["GET", "HEAD"],
    include_in_schema=False,
)
def resolve_model(
    owner: str,
    name: str,
    revision: str,
    path: str,
    request: Request,
    db: Db,
    person: OptionalPerson,
) -> Response:
    return _resolve(request, db, "model", owner, name, revision, path, person)


@router.api_route(
    "/datasets/{owner}/{name}/resolve/{revision}/{path:path}",
    methods=["GET", "HEAD"],
    include_in_schema=False,
)
def resolve_dataset(
    owner: str,
    name: str,
    revision: str,
    path: str,
    request: Request,
    db: Db,
    person: OptionalPerson,
) -> Response:
    return _resolve(request, db, "dataset", owner, name, revision, path, person)


# --- the Hub protocol's writes, search and listings (commons/hub_protocol) ---------------
from concord.commons.hub_protocol import router as _hub_router  # noqa: E402

router.include_router(_hub_router)
