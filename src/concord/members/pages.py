"""Pages of the members domain: the directory and a member's page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from concord.errors import N_
from concord.http import Db
from concord.members import directory
from concord.members.blocs import list_blocs
from concord.members.countries import INCOME_GROUPS, REGIONS
from concord.members.tables import MemberKey
from concord.web.render import render

router = APIRouter(include_in_schema=False)
NAV = [("/members", N_("Members"))]


@router.get("/members", response_class=HTMLResponse)
def member_directory(
    request: Request,
    db: Db,
    q: str = "",
    region: str = "",
    income_group: str = "",
    kind: str = "",
) -> HTMLResponse:
    views = directory.list_members(db, query=q, region=region, income_group=income_group, kind=kind)
    return render(
        request,
        "members/directory.html",
        {
            "views": views,
            "q": q,
            "region": region,
            "income_group": income_group,
            "kind": kind,
            "regions": REGIONS,
            "income_groups": INCOME_GROUPS,
            "kinds": directory.KINDS,
            "blocs": list_blocs(db),
        },
    )


@router.get("/members/{ref}", response_class=HTMLResponse)
def member_page(request: Request, ref: str, db: Db) -> HTMLResponse:
    member = directory.get_member(db, ref)
    keys = db.scalars(
        select(MemberKey).where(MemberKey.member_id == member.id).order_by(MemberKey.id.desc())
    ).all()
    return render(request, "members/member.html", {"v": directory.view(db, member), "keys": keys})
