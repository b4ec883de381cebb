"""The Hub's commit: one NDJSON body (header, file, lfsFile, deletedFile, deletedFolder) turned
into one revision by `repositories.commit`, the function `concord push` commits through.

Every file passes the same gate as a pushed one before the revision exists: its name
(`check_path`), its content (`check_content` for inline files as they arrive, as an upload;
then, for every file, the check `repositories.commit` runs on the stored bytes under the path
they get), the card's licence and the adopted standards. Any refusal leaves no revision."""

from __future__ import annotations

import base64
import binascii
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from concord.commons import repositories as repos
from concord.commons.chunks import ChunkStore, open_store
from concord.commons.formats import check_content, check_path
from concord.commons.hub_protocol.common import kind_in, on, repo_url, writable
from concord.commons.tables import Blob
from concord.errors import N_, Invalid
from concord.http import Db
from concord.members.auth import CurrentPerson

router = APIRouter(include_in_schema=False)


class BadCommit(Invalid):
    code = "commons.hub_bad_commit"
    message = N_("The commit cannot be read: {reason}")


def parse(body: bytes) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]:
    """The header and the operations of an NDJSON commit, in order."""
    header: dict[str, Any] = {}
    operations: list[tuple[str, dict[str, Any]]] = []
    for line in body.splitlines():
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            key, value = str(item["key"]), item["value"]
        except (ValueError, KeyError, TypeError) as exc:
            raise BadCommit(reason=N_("a line is not a JSON operation")) from exc
        if not isinstance(value, dict):
            raise BadCommit(reason=N_("a line is not a JSON operation"))
        if key == "header":
            header = value
        elif key in ("file", "lfsFile", "deletedFile", "deletedFolder"):
            operations.append((key, value))
        else:
            raise BadCommit(reason=N_("an operation is of an unknown kind"))
    return header, operations


def checked(db: Session, store: ChunkStore, path: str, source: Path) -> str:
    """The gate a pushed file passes (routes.upload): content by name and bytes, then stored
    (deduplicated) in the chunk store. Returns the blob's SHA-256."""
    check_content(path, source)
    return store.ingest(db, source).sha256


def _scratch(store: ChunkStore, chunks: Any) -> Path:
    descriptor, name = tempfile.mkstemp(dir=store.scratch(), prefix=".hubcommit-")
    with os.fdopen(descriptor, "wb") as out:
        for piece in chunks:
            out.write(piece)
    return Path(name)


def apply(
    db: Session,
    store: ChunkStore,
    person: Any,
    kind: str,
    owner: str,
    name: str,
    branch: str,
    body: bytes,
) -> tuple[str, str]:
    """Checks and commits; returns the new revision's sha and the repository id."""
    repo, member = writable(db, person, kind, owner, name)
    header, operations = parse(body)
    files: dict[str, str] = {}
    deleted: list[str] = []
    folders: list[str] = []
    card_text: str | None = None
    for key, value in operations:
        path = check_path(
            str(value.get("path", "")).rstrip("/")
            if key == "deletedFolder"
            else str(value.get("path", ""))
        )
        if key == "deletedFile":
            deleted.append(path)
            continue
        if key == "deletedFolder":
            folders.append(path)
            continue
        if key == "file":
            try:
                content = base64.b64decode(str(value.get("content", "")), validate=True)
            except binascii.Error as exc:
                raise BadCommit(reason=N_("a file's content is not base64")) from exc
            source = _scratch(store, [content])
            try:
                files[path] = checked(db, store, path, source)
            finally:
                source.unlink(missing_ok=True)
            if path == "README.md":
                card_text = content.decode("utf-8", "replace")
            continue
        # An LFS object, PUT earlier: `repositories.commit` runs the formats gate on its bytes
        # in the store under this path, as it does for every pushed blob.
        oid = str(value.get("oid", ""))
        blob = db.get(Blob, oid)
        if blob is None:
            raise repos.UnknownBlob(sha256=oid)
        files[path] = blob.sha256
        if path == "README.md":
            card_text = b"".join(store.stream(db, blob)).decode("utf-8", "replace")
    summary = str(header.get("summary", ""))
    description = str(header.get("description", ""))
    message = f"{summary}\n\n{description}".strip() if description else summary
    parent = header.get("parentCommit")
    revision = repos.commit(
        db,
        repo,
        author=member,
        files_sha=files,
        delete=deleted,
        delete_folders=folders,
        message=message[:2000],
        parent=str(parent) if parent else None,
        card_text=card_text,
        branch=branch,
        store=store,
    )
    db.commit()
    return revision.sha, repos.repo_id(repo)


@on(router, "post", "/{owner}/{name}/commit/{revision:path}")
async def create_commit(
    owner: str,
    name: str,
    revision: str,
    request: Request,
    db: Db,
    person: CurrentPerson,
) -> dict[str, Any]:
    kind = kind_in(request)
    if request.query_params.get("create_pr") in ("1", "true", "True"):
        raise BadCommit(reason=N_("pull requests are not available in the commons"))
    body = await request.body()
    store = open_store(request.app.state.settings)
    sha, identifier = await run_in_threadpool(
        apply, db, store, person, kind, owner, name, revision, body
    )
    return {
        "commitUrl": f"{repo_url(request, kind, identifier)}/commit/{sha}",
        "commitOid": sha,
        "pullRequestUrl": None,
    }
