"""Branches, tags and the commit history, as the Hub lists and makes them."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from concord.commons import repositories as repos
from concord.commons.hub_protocol.common import hub_time, kind_in, on, writable
from concord.commons.tables import Ref
from concord.http import Db
from concord.members.auth import CurrentPerson, OptionalPerson
from concord.members.tables import Member, Person

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
    start = str(body.get("startingPoint") or "main")
    await run_in_threadpool(_create_ref, request, db, person, owner, name, branch, start, False)
    return Response(status_code=200)


@on(router, "delete", "/{owner}/{name}/branch/{branch:path}")
def delete_branch(
    owner: str, name: str, branch: str, request: Request, db: Db, person: CurrentPerson
) -> Response:
    return _delete_ref(request, db, person, owner, name, branch, tag=False)


@on(router, "post", "/{owner}/{name}/tag/{revision:path}")
async def create_tag(
    owner: str, name: str, revision: str, request: Request, db: Db, person: CurrentPerson
) -> Response:
    body = await _json(request)
    tag = str(body.get("tag", ""))
    await run_in_threadpool(_create_ref, request, db, person, owner, name, tag, revision, True)
    return Response(status_code=200)


@on(router, "delete", "/{owner}/{name}/tag/{tag:path}")
def delete_tag(
    owner: str, name: str, tag: str, request: Request, db: Db, person: CurrentPerson
) -> Response:
    return _delete_ref(request, db, person, owner, name, tag, tag=True)


def _create_ref(
    request: Request,
    db: Session,
    person: Person,
    owner: str,
    name: str,
    ref: str,
    start: str,
    tag: bool,
) -> None:
    """A branch or tag named `ref` at the revision `start` resolves to, by a writer."""
    repo, member = writable(db, person, kind_in(request), owner, name)
    repos.create_ref(db, repo, ref, repos.resolve(db, repo, start), tag=tag, by=member)
    db.commit()


def _delete_ref(
    request: Request, db: Session, person: Person, owner: str, name: str, ref: str, *, tag: bool
) -> Response:
    repo, member = writable(db, person, kind_in(request), owner, name)
    repos.delete_ref(db, repo, ref, tag=tag, by=member)
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
