"""The HTTP app: every domain's API routes and pages, one error mapping, one body limit."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES

from concord import events
from concord.config import Settings, get_settings
from concord.db import make_engine, make_sessionmaker
from concord.domains import domain_modules
from concord.errors import N_, ConcordError, TooLarge
from concord.http import UPLOAD_PREFIXES
from concord.i18n import LANGUAGES, current_language, negotiate
from concord.memory import release_large_blocks
from concord.metrics import LATENCY, REQUESTS

log = logging.getLogger("concord")
STATIC = Path(__file__).parent / "web" / "static"
LANG_COOKIE = "concord_lang"


def create_app(settings: Settings | None = None) -> FastAPI:
    """Builds the hub's app; all state lives in the database and the store."""
    settings = settings or get_settings()
    release_large_blocks()
    app = FastAPI(
        title="Concord",
        summary="Multilateral AI cooperation: consensus, federated training, an open commons.",
        version="0.1.0",
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
    )
    engine = make_engine(settings.database())
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = make_sessionmaker(engine)

    for module in domain_modules("routes"):
        app.include_router(module.router)
    from concord.web import pages as shell_pages

    app.include_router(shell_pages.router)
    for module in domain_modules("pages"):
        app.include_router(module.router)
    domain_modules("handlers")  # event subscribers register themselves at import
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    _install_error_handlers(app)
    _install_middleware(app, settings)

    from concord import health

    app.include_router(health.router)
    _install_gauges(app)

    @app.on_event("startup")
    def deliver_events() -> None:
        events.deliver_pending(app.state.sessions, settings)

    return app


def _install_gauges(app: FastAPI) -> None:
    from sqlalchemy import func, select

    from concord.ledger.log import size
    from concord.members.tables import Member
    from concord.metrics import gauge

    def log_size() -> float:
        with app.state.sessions() as db:
            return float(size(db))

    def members() -> float:
        with app.state.sessions() as db:
            count = db.scalar(
                select(func.count()).select_from(Member).where(Member.status == "active")
            )
            return float(count or 0)

    gauge("concord_log_entries", "Entries in the transparency log.", log_size)
    gauge("concord_active_members", "Members in good standing.", members)


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api") and "text/html" in request.headers.get(
        "accept", ""
    )


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ConcordError)
    async def concord_error(request: Request, exc: ConcordError) -> Response:
        if _wants_html(request):
            from concord.web.render import error_page

            return error_page(request, exc)
        return JSONResponse(exc.to_json(), status_code=exc.status, headers=exc.hub_headers())

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        problems = [
            {"where": ".".join(str(p) for p in e.get("loc", ())), "problem": e.get("msg", "")}
            for e in exc.errors()
        ]
        body = {
            "error": {
                "code": "request.invalid",
                "message": "; ".join(f"{p['where']}: {p['problem']}" for p in problems),
                "details": {"problems": problems},
            }
        }
        return JSONResponse(body, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        err = HTTP_ERRORS.get(exc.status_code, RouteNotFound)()
        if _wants_html(request):
            from concord.web.render import error_page

            return error_page(request, err)
        return JSONResponse(err.to_json(), status_code=err.status)


class RouteNotFound(ConcordError):
    code = "not_found"
    status = 404
    message = N_("There is nothing at this address.")


class MethodNotAllowed(ConcordError):
    code = "method_not_allowed"
    status = 405
    message = N_("This address does not accept that method.")


HTTP_ERRORS: dict[int, type[ConcordError]] = {404: RouteNotFound, 405: MethodNotAllowed}


def _install_middleware(app: FastAPI, settings: Settings) -> None:
    Next = Callable[[Request], Awaitable[Response]]

    @app.middleware("http")
    async def observe(request: Request, call_next: Next) -> Response:
        started = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            if request.method in ("POST", "PUT", "PATCH", "DELETE") and status < 400:
                # A write may have announced an event (a project adopted): deliver it beside
                # the request, not inside it — on SQLite the request's session may still hold
                # the write lock until it closes, and waiting for it here would deadlock.
                events.deliver_in_background(app.state.sessions, settings)
            return response
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(request.scope.get("route"), "path", None) or "unmatched"
            REQUESTS.labels(request.method, route, str(status)).inc()
            LATENCY.labels(request.method, route).observe(elapsed)
            log.info(
                "request",
                extra={
                    "method": request.method,
                    "path": request.url.path,
                    "route": route,
                    "status": status,
                    "ms": round(elapsed * 1000, 1),
                },
            )

    @app.middleware("http")
    async def language_and_limits(request: Request, call_next: Next) -> Response:
        wanted = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE)
        if wanted not in LANGUAGES:
            wanted = negotiate(request.headers.get("accept-language"), settings.default_language)
        token = current_language.set(wanted)
        try:
            limit = settings.max_body_bytes
            if any(request.url.path.startswith(p) for p in UPLOAD_PREFIXES):
                limit = settings.max_upload_bytes
            declared = request.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                exc = TooLarge(limit=limit)
                return JSONResponse(exc.to_json(), status_code=exc.status)
            if declared is None and request.method in ("POST", "PUT", "PATCH"):
                if limit == settings.max_body_bytes:
                    body = await _read_limited(request, limit)
                    if body is None:
                        exc = TooLarge(limit=limit)
                        return JSONResponse(exc.to_json(), status_code=exc.status)
                    request = _replay(request, body)
                else:
                    request = _limited(request, limit)
            response = await call_next(request)
            if request.query_params.get("lang") in LANGUAGES:
                response.set_cookie(
                    LANG_COOKIE,
                    wanted,
                    max_age=365 * 86400,
                    samesite="lax",
                    secure=settings.secure_cookies,
                )
            new_csrf = getattr(request.state, "new_csrf", None)
            if new_csrf:
                from concord.members.auth import CSRF_COOKIE

                response.set_cookie(
                    CSRF_COOKIE,
                    new_csrf,
                    httponly=True,
                    samesite="strict",
                    secure=settings.secure_cookies,
                )
            response.headers.setdefault("Content-Language", wanted)
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
            return response
        finally:
            current_language.reset(token)

    # File bytes (commons downloads, federation parameters) go out as they are: model weights
    # hardly compress, gzip at ~25 MB/s would be the bottleneck, and a compressed body has
    # neither the announced Content-Length nor the offsets a resumed download relies on.
    app.add_middleware(
        GZipMiddleware,
        minimum_size=1024,
        exclude_content_types=(*DEFAULT_EXCLUDED_CONTENT_TYPES, "application/octet-stream"),
    )


async def _read_limited(request: Request, limit: int) -> bytes | None:
    """The whole body of a request without Content-Length, or None past `limit` bytes."""
    parts: list[bytes] = []
    seen = 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > limit:
            return None
        parts.append(chunk)
    return b"".join(parts)


def _replay(request: Request, body: bytes) -> Request:
    sent = False

    async def receive() -> MutableMapping[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(request.scope, receive)


def _limited(request: Request, limit: int) -> Request:
    """Wraps a chunked body so that reading past `limit` bytes fails with `TooLarge`."""
    receive = request.receive
    seen = 0

    async def limited_receive() -> MutableMapping[str, Any]:
        nonlocal seen
        message = await receive()
        if message.get("type") == "http.request":
            body = message.get("body", b"")
            seen += len(body) if isinstance(body, bytes | bytearray) else 0
            if seen > limit:
                raise TooLarge(limit=limit)
        return message

    return Request(request.scope, limited_receive)
