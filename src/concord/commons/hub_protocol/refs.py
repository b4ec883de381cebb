"""Branches, tags and the commit history, as the Hub lists and makes them."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from concord.commons import repositories as repos
from concord.commons.hub_protocol.common import hub_time, kind_in, on, writable
from concord.commons.tables import Ref
from concord.http import Db
from concord.members.auth import CurrentPerson, OptionalPerson
from concord.members.tables import Member

router = APIRouter(include_in_schema=False)


def _ref(ref: Ref) -> dict[str, Any]:
    tag = ref.name.startswith(repos.TAG)
    name = ref.name[len(repos.TAG) :] if tag else ref.name
    return {
        "name": name,
        "ref": f"refs/{'tags' if tag else 'heads'}/{name}",
        "targetCommit": ref.sha,
    }


@on(router, "get", "/{owner}/{name}/refs")
def list_refs(
    owner: str, name: str, request: Request, db: Db, person: OptionalPerson
) -> dict[str, Any]:
    repo = repos.seen(db, kind_in(request), owner, name, person)
    branches, tags = repos.refs(db, repo)
    return {
        "branches": [_ref(r) for r in branches],
        "tags": [_ref(r) for r in tags],
        "converts": [],
        "pullRequests": [],
    }


async def _json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        data = {}
    return data if isinstance(data, dict) else {}


@on(router, "post", "/{owner}/{name}/branch/{branch:path}")
async def create_branch(
    owner: str, name: str, branch: str, request: Request, db: Db, person: CurrentPerson
) -> Response:
    body = await _json(request)

    def run() -> None:
        repo, member = writable(db, person, kind_in(request), owner, name)
        start = repos.resolve(db, repo, str(body.get("startingPoint") or "main"))
        repos.create_ref(db, repo, branch, start, tag=False, by=member)
        db.commit()

    await run_in_threadpool(run)
    return Response(status_code=200)


@on(router, "delete", "/{owner}/{name}/branch/{branch:path}")
def delete_branch(
    owner: str, name: str, branch: str, request: Request, db: Db, person: CurrentPerson
) -> Response:
    repo, member = writable(db, person, kind_in(request), owner, name)
    repos.delete_ref(db, repo, branch, tag=False, by=member)
    db.commit()
    return Response(status_code=200)


@on(router, "post", "/{owner}/{name}/tag/{revision:path}")
async def create_tag(
    owner: str, name: str, revision: str, request: Request, db: Db, person: CurrentPerson
) -> Response:
    body = await _json(request)

    def run() -> None:
        repo, member = writable(db, person, kind_in(request), owner, name)
        target = repos.resolve(db, repo, revision)
        repos.create_ref(db, repo, str(body.get("tag", "")), target, tag=True, by=member)
        db.commit()

    await run_in_threadpool(run)
    return Response(status_code=200)


@on(router, "delete", "/{owner}/{name}/tag/{tag:path}")
def delete_tag(
    owner: str, name: str, tag: str, request: Request, db: Db, person: CurrentPerson
) -> Response:
    repo, member = writable(db, person, kind_in(request), owner, name)
    repos.delete_ref(db, repo, tag, tag=True, by=member)
    db.commit()
    return Response(status_code=200)


@on(router, "get", "/{owner}/{name}/commits/{revision:path}")
def list_commits(
    owner: str, name: str, revision: str, request: Request, db: Db, person: OptionalPerson
) -> list[dict[str, Any]]:
    repo = repos.seen(db, kind_in(request), owner, name, person)
    out = []
    for rev in repos.history(db, repo, repos.resolve(db, repo, revision)):
        author = db.get(Member, rev.author_id) if rev.author_id else None
        title, _sep, rest = rev.message.partition("\n")
        out.append(
            {
                "id": rev.sha,
                "authors": [{"user": author.slug if author else repo.owner}],
                "date": hub_time(rev.created_at),
                "title": title,
                "message": rest.strip(),
            }
        )
    return out
