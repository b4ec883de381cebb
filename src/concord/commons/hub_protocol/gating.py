"""Access requests to gated repositories: asking (any signed-in person) and the owner's list,
decisions and grants, at the Hub's addresses for them."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from concord.commons import access
from concord.commons import repositories as repos
from concord.commons.hub_protocol.common import hub_time, kind_in, on, writable
from concord.http import Db
from concord.members.auth import CurrentPerson

router = APIRouter(include_in_schema=False)


@on(router, "post", "/{owner}/{name}/ask-access")
def ask_access(
    owner: str, name: str, request: Request, db: Db, person: CurrentPerson
) -> dict[str, Any]:
    repo = repos.seen(db, kind_in(request), owner, name, person)
    asked = access.ask(db, repo, repos.resolve(db, repo, "main"), person)
    db.commit()
    return {"status": asked.status}


@on(router, "get", "/{owner}/{name}/user-access-request/{status}")
def list_requests(
    owner: str, name: str, status: str, request: Request, db: Db, person: CurrentPerson
) -> list[dict[str, Any]]:
    repo, _member = writable(db, person, kind_in(request), owner, name)
    return [
        {
            "user": {"user": who.email, "fullname": who.name, "email": who.email},
            "requestId": str(asked.id),
            "status": asked.status,
            "timestamp": hub_time(asked.requested_at),
        }
        for asked, who in access.requests(db, repo, status)
    ]


async def _body(request: Request) -> dict[str, Any]:
    try:
        data = json.loads(await request.body() or b"{}")
    except ValueError:
        data = {}
    return data if isinstance(data, dict) else {}


@on(router, "post", "/{owner}/{name}/user-access-request/handle")
async def handle_request(
    owner: str, name: str, request: Request, db: Db, person: CurrentPerson
) -> dict[str, Any]:
    body = await _body(request)

    def run() -> dict[str, Any]:
        repo, member = writable(db, person, kind_in(request), owner, name)
        access.decide(db, repo, str(body.get("user", "")), str(body.get("status", "")), by=member)
        db.commit()
        return {}

    return await run_in_threadpool(run)


@on(router, "post", "/{owner}/{name}/user-access-request/grant")
async def grant(
    owner: str, name: str, request: Request, db: Db, person: CurrentPerson
) -> dict[str, Any]:
    body = await _body(request)

    def run() -> dict[str, Any]:
        repo, member = writable(db, person, kind_in(request), owner, name)
        access.decide(db, repo, str(body.get("user", "")), "accepted", by=member)
        db.commit()
        return {}

    return await run_in_threadpool(run)
