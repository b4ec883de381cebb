"""Who is asking: FastAPI dependencies for the API (bearer tokens) and pages (cookies).

The API takes only `Authorization: Bearer` tokens, so a browser's cookies can never be used to
write through the API. Pages take the session cookie and check a CSRF token on every form.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import Depends, Request

from concord.errors import N_, Forbidden
from concord.http import Db
from concord.members.tables import Person
from concord.members.tokens import BadToken, authenticate, browser_person

SESSION_COOKIE = "concord_session"
CSRF_COOKIE = "concord_csrf"


class CsrfFailed(Forbidden):
    code = "auth.csrf"
    message = N_("The form has expired or came from another site; reload the page and retry.")


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _sep, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def optional_person(request: Request, db: Db) -> Person | None:
    """The token's person, or None when no token is sent (a bad token is still an error)."""
    secret = _bearer(request)
    if secret is None:
        return None
    person = authenticate(db, secret)
    db.commit()  # keep last_used_at
    return person


def current_person(request: Request, db: Db) -> Person:
    """The token's person; every write route depends on this."""
    person = optional_person(request, db)
    if person is None:
        raise BadToken()
    return person


def page_person(request: Request, db: Db) -> Person | None:
    """The person signed in on this browser, if any."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    return browser_person(db, cookie)


def csrf_token(request: Request) -> str:
    """This browser's CSRF token (double-submit cookie), made on first use."""
    token = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf", None)
    if not token:
        token = secrets.token_urlsafe(24)
        request.state.new_csrf = token  # the page middleware sets the cookie
    return token


async def check_csrf(request: Request) -> None:
    """Refuses a form post whose CSRF field does not match the browser's cookie."""
    form = await request.form()
    sent = str(form.get("csrf", ""))
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(sent.encode(), cookie.encode()):
        raise CsrfFailed()


CurrentPerson = Annotated[Person, Depends(current_person)]
OptionalPerson = Annotated[Person | None, Depends(optional_person)]
PagePerson = Annotated[Person | None, Depends(page_person)]
CsrfChecked = Annotated[None, Depends(check_csrf)]
