"""The HTTP app: every domain's API routes and pages, one error mapping, and the edge
(`concord.web.edge`: limits, headers, language) around them."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from anyio import to_thread
from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from concord import events
from concord.config import Settings, get_settings
from concord.db import make_engine, make_sessionmaker
from concord.domains import domain_modules
from concord.errors import N_, ConcordError
from concord.memory import release_large_blocks
from concord.validation import ERROR_RESPONSES, MalformedJson, bounded_json, problems_response
from concord.web import docs, edge

log = logging.getLogger("concord")
STATIC = Path(__file__).parent / "web" / "static"
LANG_COOKIE = edge.LANG_COOKIE
# Sync handlers and async routes' `step`s run in AnyIO's worker threads (40 by default), each
# holding one database session. The pool must lend that many connections at once, plus the
# event courier's and the gauges': with SQLAlchemy's default 5 + 10, a burst of requests
# (benchmarks/load.py, 2,000 delegates) waited 30 s for a connection and failed with 500.
WORKER_THREADS = 40
POOL_SIZE = 10
POOL_OVERFLOW = WORKER_THREADS + 5 - POOL_SIZE


def create_app(settings: Settings | None = None) -> FastAPI:
    """Builds the hub's app; all state lives in the database and the store."""
    settings = settings or get_settings()
    release_large_blocks()
    app = FastAPI(
        title="Concord",
        summary="Multilateral AI cooperation: consensus, federated training, an open commons.",
        version="0.1.0",
        docs_url=None,  # served by concord.web.docs from the hub's own files
        openapi_url="/api/openapi.json",
        redoc_url=None,
        dependencies=[Depends(bounded_json)],
        responses=ERROR_RESPONSES,
    )
    engine = make_engine(settings.database(), **_pool(settings.database()))
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = make_sessionmaker(engine)

    for module in domain_modules("routes"):
        app.include_router(module.router)
    from concord.web import events as event_pages
    from concord.web import pages as shell_pages

    app.include_router(shell_pages.router)
    app.include_router(event_pages.router)
    for module in domain_modules("pages"):
        app.include_router(module.router)
    domain_modules("handlers")  # event subscribers register themselves at import
    docs.install(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    _install_error_handlers(app)
    edge.install(app, settings)

    from concord import health

    app.include_router(health.router)
    _install_gauges(app)

    @app.on_event("startup")
    async def size_worker_threads() -> None:
        # Said here, not left to AnyIO's default, because the pool above is sized to it.
        to_thread.current_default_thread_limiter().total_tokens = WORKER_THREADS

    @app.on_event("startup")
    def deliver_events() -> None:
        events.deliver_pending(app.state.sessions, settings)
        # Retries left by the last run (or another process) are the courier's to schedule.
        events.deliver_in_background(app.state.sessions, settings)

    return app


def _pool(url: str) -> dict[str, Any]:
    """Pool sizes for a file or server database (an in-memory SQLite keeps its own pool)."""
    if url.startswith("sqlite") and (":memory:" in url or url.rstrip("/") == "sqlite:"):
        return {}
    return {"pool_size": POOL_SIZE, "max_overflow": POOL_OVERFLOW}


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
            from concord.web.render import error_page_async

            return await error_page_async(request, exc)
        return JSONResponse(exc.to_json(), status_code=exc.status, headers=exc.hub_headers())

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        return problems_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        err = HTTP_ERRORS.get(exc.status_code, RouteNotFound)()
        if _wants_html(request):
            from concord.web.render import error_page_async

            return await error_page_async(request, err)
        return JSONResponse(err.to_json(), status_code=err.status)


class RouteNotFound(ConcordError):
    code = "not_found"
    status = 404
    message = N_("There is nothing at this address.")


class MethodNotAllowed(ConcordError):
    code = "method_not_allowed"
    status = 405
    message = N_("This address does not accept that method.")


# FastAPI raises a bare 400 when a body cannot be parsed at all (not UTF-8, nested past
# Python's recursion limit): that is a malformed body, not a missing page.
HTTP_ERRORS: dict[int, type[ConcordError]] = {
    400: MalformedJson,
    404: RouteNotFound,
    405: MethodNotAllowed,
}
