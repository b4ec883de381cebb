"""Pages: programmes (with enrolment and a calendar link), commitments, and the exchange."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from concord.capacity import commitments, enrolment, exchange, matching, priorities, programmes
from concord.capacity.tables import ExchangeItem, Match, Programme
from concord.errors import N_
from concord.http import Db
from concord.members.auth import CsrfChecked, PagePerson
from concord.members.people import acting_member
from concord.members.tables import Member
from concord.members.tokens import BadToken
from concord.validation import Id
from concord.web.render import render

router = APIRouter(include_in_schema=False)
NAV = [("/programmes", N_("Programmes")), ("/exchange", N_("Exchange"))]


def _members(db: Db) -> dict[int, Member]:
    return {m.id: m for m in db.scalars(select(Member)).all()}


@router.get("/programmes", response_class=HTMLResponse)
def programme_list(request: Request, db: Db, area: str = "") -> HTMLResponse:
    ranking = priorities.current(db)
    rows = priorities.standings(ranking, programmes.list_programmes(db, area=area))
    return render(
        request,
        "capacity/programmes.html",
        {
            "rows": [(p, programmes.seats_taken(db, p), s) for p, s in rows],
            "ranking": ranking,
            "areas": programmes.AREAS,
            "area": area,
            "members": _members(db),
            "progress": commitments.all_progress(db),
        },
    )


def _standing(db: Db, p: Programme) -> priorities.Standing | None:
    ((_, standing),) = priorities.standings(priorities.current(db), [p])
    return standing


@router.get("/programmes/{programme_id}", response_class=HTMLResponse)
def programme_page(request: Request, programme_id: Id, db: Db, person: PagePerson) -> HTMLResponse:
    p = programmes.get_programme(db, programme_id)
    return render(
        request,
        "capacity/programme.html",
        {
            "p": p,
            "taken": programmes.seats_taken(db, p),
            "waiting": len(programmes.waiting(db, p)),
            "members": _members(db),
            "areas": programmes.AREAS,
            "modes": programmes.MODES,
            "standing": _standing(db, p),
            "can_enrol": person is not None and person.role == "delegate",
            "done": None,
        },
    )


@router.post("/programmes/{programme_id}/enrol")
def enrol_from_page(
    request: Request,
    programme_id: Id,
    db: Db,
    person: PagePerson,
    _csrf: CsrfChecked,
    participant: str = Form(""),
    email: str = Form(""),
) -> Response:
    if person is None:
        raise BadToken()
    member = acting_member(db, person)
    p = programmes.get_programme(db, programme_id)
    row = enrolment.enrol(db, p, member, participant=participant, email=email)
    db.commit()
    return render(
        request,
        "capacity/programme.html",
        {
            "p": p,
            "taken": programmes.seats_taken(db, p),
            "waiting": len(programmes.waiting(db, p)),
            "members": _members(db),
            "areas": programmes.AREAS,
            "modes": programmes.MODES,
            "standing": _standing(db, p),
            "can_enrol": True,
            "done": row,
        },
    )


@router.get("/exchange", response_class=HTMLResponse)
def exchange_page(request: Request, db: Db, person: PagePerson) -> HTMLResponse:
    items = {i.id: i for i in db.scalars(select(ExchangeItem)).all()}
    matches = db.scalars(select(Match).order_by(Match.id.desc()).limit(100)).all()
    mine = person.member_id if person is not None and person.role == "delegate" else None
    return render(
        request,
        "capacity/exchange.html",
        {
            "needs": exchange.list_items(db, side="need"),
            "offers": exchange.list_items(db, side="offer"),
            "items": items,
            "matches": matches,
            "members": _members(db),
            "kinds": exchange.KINDS,
            "explain": matching.explain,
            "mine": mine,
        },
    )


@router.post("/exchange/matches/{match_id}")
def answer_from_page(
    match_id: Id,
    db: Db,
    person: PagePerson,
    _csrf: CsrfChecked,
    accept: str = Form("no"),
) -> Response:
    if person is None:
        raise BadToken()
    member = acting_member(db, person)
    match = db.get(Match, match_id)
    if match is None:
        raise exchange.UnknownItem(item=match_id)
    matching.answer(db, match, member, accept == "yes")
    db.commit()
    return RedirectResponse("/exchange", status_code=303)
