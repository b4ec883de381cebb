"""`list_models` and `list_datasets`: search, author, tags from the card, sort, limit, and
cursor pagination with a `Link` header, as the Hub pages its listings."""

from __future__ import annotations

import base64
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from concord.commons import repositories as repos
from concord.commons.hub_protocol.common import hub_time
from concord.commons.search import SORTS, Found, find
from concord.http import Db
from concord.members.auth import OptionalPerson
from concord.members.tables import Person

router = APIRouter(include_in_schema=False)
PAGE_MAX = 1000


def _item(kind: str, f: Found, card_data: bool) -> dict[str, Any]:
    card = f.revision.card if f.revision else {}
    item: dict[str, Any] = {
        "_id": str(f.repo.id),
        "id": repos.repo_id(f.repo),
        "author": f.repo.owner,
        "sha": f.revision.sha if f.revision else None,
        "lastModified": hub_time(f.revision.created_at if f.revision else f.repo.created_at),
        "createdAt": hub_time(f.repo.created_at),
        "private": f.repo.private,
        "gated": False,
        "disabled": False,
        "downloads": f.downloads,
        "downloadsAllTime": f.downloads_all_time,
        "likes": f.likes,
        "tags": f.tags,
    }
    if kind == "model":
        item["modelId"] = item["id"]
        item["pipeline_tag"] = card.get("pipeline_tag")
        item["library_name"] = card.get("library_name")
    if card_data:
        item["cardData"] = card
    return item


def _listing(
    request: Request, db: Session, kind: str, params: dict[str, Any], person: Person | None
) -> JSONResponse:
    sort = str(params["sort"] or "")
    found = find(
        db,
        kind,
        text=params["search"] or "",
        author=params["author"] or "",
        tags=params["filter"] or [],
        sort=sort if sort in SORTS else "",
        descending=str(params["direction"]) != "1",
        person=person,
    )
    db.rollback()
    size = max(1, min(int(params["limit"] or PAGE_MAX), PAGE_MAX))
    try:
        start = int(base64.urlsafe_b64decode(params["cursor"] or "MA==").decode() or 0)
    except ValueError:
        start = 0
    page = found[start : start + size]
    wanted_card = bool(params["cardData"] or params["full"])
    headers = {}
    if start + size < len(found):
        following = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
        cursor = base64.urlsafe_b64encode(str(start + size).encode()).decode()
        query = urlencode([*following, ("cursor", cursor)])
        url = f"{str(request.base_url).rstrip('/')}{request.url.path}?{query}"
        headers["Link"] = f'<{url}>; rel="next"'
    return JSONResponse([_item(kind, f, wanted_card) for f in page], headers=headers)


def _params(
    search: str | None = None,
    author: str | None = None,
    filter: list[str] | None = Query(default=None),
    sort: str | None = None,
    direction: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
    full: str | None = None,
    cardData: str | None = None,
) -> dict[str, Any]:
    """The Hub's listing query, as `list_models` and `list_datasets` send it."""
    return dict(
        search=search,
        author=author,
        filter=filter,
        sort=sort,
        direction=direction,
        limit=limit,
        cursor=cursor,
        full=full not in (None, "", "False", "false"),
        cardData=cardData not in (None, "", "False", "false"),
    )


Listing = Annotated[dict[str, Any], Depends(_params)]


@router.get("/api/models")
def list_models(request: Request, db: Db, person: OptionalPerson, params: Listing) -> JSONResponse:
    return _listing(request, db, "model", params, person)


@router.get("/api/datasets")
def list_datasets(
    request: Request, db: Db, person: OptionalPerson, params: Listing
) -> JSONResponse:
    return _listing(request, db, "dataset", params, person)
