"""The shell's own pages: home, sign-in and sign-out."""

from __future__ import annotations

from urllib.parse import urlparse

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select

from concord.errors import ConcordError
from concord.http import AppSettings, Db
from concord.ledger.log import size as log_size
from concord.members.auth import SESSION_COOKIE, CsrfChecked
from concord.members.tables import Member
from concord.members.tokens import close_browser_session, sign_in_browser
from concord.web.render import render

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home(request: Request, db: Db) -> HTMLResponse:
    members = db.scalar(select(func.count()).select_from(Member).where(Member.status == "active"))
    return render(request, "home.html", {"members": members, "log_size": log_size(db)})


def _safe_next(target: str) -> str:
    """Only same-site paths: an open redirect would help phishing."""
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_form(request: Request, next: str = "/") -> HTMLResponse:
    return render(request, "signin.html", {"next": _safe_next(next), "error": None})


@router.post("/sign-in")
def sign_in(
    request: Request,
    db: Db,
    settings: AppSettings,
    _csrf: CsrfChecked,
    token: str = Form(""),
    next: str = Form("/"),
) -> Response:
    try:
        cookie = sign_in_browser(db, token, settings.session_hours)
    except ConcordError as exc:
        return render(
            request,
            "signin.html",
            {"next": _safe_next(next), "error": exc.render()},
            status=exc.status,
        )
    db.commit()
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        max_age=settings.session_hours * 3600,
    )
    return response


@router.post("/sign-out")
def sign_out(request: Request, db: Db, _csrf: CsrfChecked) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        close_browser_session(db, cookie)
        db.commit()
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response
