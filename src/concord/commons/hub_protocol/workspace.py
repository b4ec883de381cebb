"""Who am I, repositories (create, delete, settings), pre-upload and path information."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from concord.commons import access
from concord.commons import repositories as repos
from concord.commons.formats import PICKLE_SUFFIXES, UnsafeFormat, check_path
from concord.commons.hub_protocol.common import hub_time, kind_in, on, repo_url, writable
from concord.errors import N_, Invalid
from concord.http import Db
from concord.members.auth import CurrentPerson, OptionalPerson
from concord.members.people import acting_member

router = APIRouter(include_in_schema=False)
# Above this, or when the sample is not text, the client is told to use the LFS upload; below,
# the content travels base64 inside the commit (whose body stays well under the request limit).
REGULAR_MAX_BYTES = 64 * 1024
# A commit's NDJSON body is an ordinary request (1 MiB by default): the client asks about at
# most 256 files at a time, and no more than this much of each batch travels inline.
INLINE_MAX_BYTES = 128 * 1024


class NotInTheCommons(Invalid):
    code = "commons.hub_not_supported"
    message = N_("The commons does not support this: {reason}")


def _body(raw: bytes) -> dict[str, Any]:
    import json

    try:
        data = json.loads(raw or b"{}")
    except ValueError as exc:
        raise NotInTheCommons(reason=N_("the request body is not JSON")) from exc
    if not isinstance(data, dict):
        raise NotInTheCommons(reason=N_("the request body is not a JSON object"))
    return data


@router.get("/api/whoami-v2")
def whoami(db: Db, person: CurrentPerson) -> dict[str, Any]:
    """The token's person, named by the member they publish for (the Hub's namespace)."""
    member = acting_member(db, person)
    return {
        "type": "user",
        "id": str(person.id),
        "name": member.slug,
        "fullname": person.name,
        "email": person.email,
        "emailVerified": True,
        "canPay": False,
        "isPro": False,
        "orgs": [],
        "auth": {
            "type": "access_token",
            "accessToken": {"displayName": "concord", "role": "write"},
        },
    }


@router.post("/api/repos/create")
async def create_repo(request: Request, db: Db, person: CurrentPerson) -> dict[str, Any]:
    body = _body(await request.body())
    try:
        return await run_in_threadpool(_create, request, db, person, body)
    except repos.RepositoryExists as exc:
        # The client's `exist_ok` reads the existing repository's URL from the 409's body.
        from fastapi.responses import JSONResponse

        kind = str(body.get("type") or "model")
        repo_id = str(exc.params.get("repo", ""))
        answer = {**exc.to_json(), "url": repo_url(request, kind, repo_id)}
        return JSONResponse(answer, status_code=exc.status, headers=exc.hub_headers())  # type: ignore[return-value]


def _create(
    request: Request, db: Db, person: CurrentPerson, body: dict[str, Any]
) -> dict[str, Any]:
    kind = str(body.get("type") or "model")
    member = acting_member(db, person, body.get("organization") or None)
    # The licence comes with the first card (README.md); `concord push` names it up front.
    repo = repos.create(
        db,
        member,
        kind=kind,
        name=str(body.get("name", "")),
        licence="",
        private=_visibility(body) is True,
    )
    db.commit()
    identifier = repos.repo_id(repo)
    return {"url": repo_url(request, kind, identifier), "name": identifier, "id": str(repo.id)}


@router.delete("/api/repos/delete")
async def delete_repo(request: Request, db: Db, person: CurrentPerson) -> Response:
    body = _body(await request.body())
    await run_in_threadpool(_delete, db, person, body)
    return Response(status_code=200)


def _delete(db: Db, person: CurrentPerson, body: dict[str, Any]) -> None:
    kind = str(body.get("type") or "model")
    owner = body.get("organization") or acting_member(db, person).slug
    repo, member = writable(db, person, kind, str(owner), str(body.get("name", "")))
    repos.delete(db, repo, by=member)
    db.commit()


@on(router, "put", "/{owner}/{name}/settings")
async def update_settings(
    owner: str, name: str, request: Request, db: Db, person: CurrentPerson
) -> dict[str, Any]:
    body = _body(await request.body())
    kind = kind_in(request)

    def run() -> dict[str, Any]:
        repo, member = writable(db, person, kind, owner, name)
        if body.get("gated") not in (None, False, "false"):
            raise NotInTheCommons(
                reason=N_("a repository is gated by its card: “gated: manual” or “gated: auto”")
            )
        private = _visibility(body)
        if private is not None:
            repos.set_private(db, repo, private, by=member)
        db.commit()
        return {}

    return await run_in_threadpool(run)


def _visibility(body: dict[str, Any]) -> bool | None:
    """True (private), False (public) or None (unchanged), from the Hub's `visibility` or the
    older `private` field."""
    visibility = body.get("visibility")
    if visibility in ("private", "public"):
        return bool(visibility == "private")
    if visibility is not None:
        raise NotInTheCommons(reason=N_("a repository is public or private"))
    private = body.get("private")
    return None if private is None else bool(private)


@router.post("/api/validate-yaml")
async def validate_yaml(request: Request) -> Response:
    """The client checks a card's metadata before uploading anything: the same parser as the
    commit's, so a card that passes here is not refused later for its YAML."""
    body = _body(await request.body())
    try:
        repos.parse_card(str(body.get("content", "")))
    except repos.BadRepository as exc:
        from fastapi.responses import JSONResponse

        return JSONResponse({"errors": [{"message": exc.render("en")}]}, status_code=400)
    return Response(content=b"{}", media_type="application/json")


@on(router, "post", "/{owner}/{name}/preupload/{revision:path}")
async def preupload(
    owner: str, name: str, revision: str, request: Request, db: Db, person: CurrentPerson
) -> dict[str, Any]:
    """Says how each file travels: `regular` (inside the commit) for small text, `lfs` (the
    batch API) for the rest. Names and pickle suffixes are refused here, before any upload."""
    body = _body(await request.body())
    kind = kind_in(request)

    def run() -> dict[str, Any]:
        writable(db, person, kind, owner, name)
        db.rollback()
        answers = []
        inline = 0  # bytes this batch sends inside the commit, which has a body limit
        for item in body.get("files") or []:
            path = check_path(str(item.get("path", "")))
            if "." + path.rsplit(".", 1)[-1].lower() in PICKLE_SUFFIXES:
                raise UnsafeFormat(name=path)
            mode = _mode(item)
            if mode == "regular":
                inline += int(item.get("size", 0))
                if inline > INLINE_MAX_BYTES:
                    mode = "lfs"
            answers.append(
                {
                    "path": item.get("path"),
                    "uploadMode": mode,
                    "shouldIgnore": False,
                    "oid": None,
                }
            )
        return {"files": answers, "commitOid": None}

    return await run_in_threadpool(run)


def _mode(item: dict[str, Any]) -> str:
    try:
        sample = base64.b64decode(str(item.get("sample", "")), validate=True)
        size = int(item.get("size", 0))
    except (binascii.Error, ValueError):
        return "lfs"
    if size > REGULAR_MAX_BYTES or b"\x00" in sample:
        return "lfs"
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the sample's end is still text.
        if exc.start < len(sample) - 3:
            return "lfs"
    return "regular"


@on(router, "post", "/{owner}/{name}/paths-info/{revision:path}")
async def paths_info(
    owner: str, name: str, revision: str, request: Request, db: Db, person: OptionalPerson
) -> list[dict[str, Any]]:
    form = await request.form()
    wanted = [str(p) for p in form.getlist("paths")]
    kind = kind_in(request)

    def run() -> list[dict[str, Any]]:
        repo = repos.seen(db, kind, owner, name, person)
        rev = repos.resolve(db, repo, revision)
        out: list[dict[str, Any]] = []
        entries = {f.path: f.blob for f in repos.files(db, rev)}
        readable = access.may_read(db, repo, rev, person)
        for path in wanted:
            path = path.strip("/")
            if path in entries and not readable:  # gated: no hash (it is the address)
                out.append({"type": "file", "path": path, "size": entries[path].size, "oid": ""})
            elif path in entries:
                blob = entries[path]
                out.append(
                    {
                        "type": "file",
                        "path": path,
                        "size": blob.size,
                        "oid": blob.sha256[:40],
                        "lfs": {"oid": blob.sha256, "size": blob.size, "pointerSize": 134},
                        "lastCommit": {
                            "id": rev.sha,
                            "title": rev.message,
                            "date": hub_time(rev.created_at),
                        },
                    }
                )
            elif any(p.startswith(path + "/") for p in entries):
                out.append({"type": "directory", "path": path, "oid": rev.sha})
        return out

    return await run_in_threadpool(run)
