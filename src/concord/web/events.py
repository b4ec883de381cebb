"""The secretariat's view of domain events that are not delivered: failed ones and retries."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from concord import events
from concord.errors import N_
from concord.http import Db
from concord.members.auth import CsrfChecked, PagePerson
from concord.members.people import require_role
from concord.members.tables import Person
from concord.members.tokens import BadToken
from concord.validation import Id
from concord.web.render import render

router = APIRouter(include_in_schema=False)
# The states an event's row can be in (`events.Event.state`), for the page's catalogue.
STATES = (N_("pending"), N_("retrying"), N_("failed"), N_("delivered"))


def _secretariat(person: Person | None) -> Person:
    if person is None:
        raise BadToken()
    require_role(person, "secretariat")
    return person


@router.get("/events", response_class=HTMLResponse)
def event_list(request: Request, db: Db, person: PagePerson) -> HTMLResponse:
    _secretariat(person)
    rows = events.undelivered(db)
    return render(request, "events.html", {"rows": rows, "max_attempts": events.MAX_ATTEMPTS})


@router.post("/events/{event_id}/retry")
def event_retry(event_id: Id, db: Db, person: PagePerson, _csrf: CsrfChecked) -> Response:
    _secretariat(person)
    events.retry(db, event_id)
    db.commit()  # the write's response wakes the courier, which delivers it at once
    return RedirectResponse("/events", status_code=303)
