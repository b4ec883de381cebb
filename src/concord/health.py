"""Liveness, readiness and metrics endpoints for operators and load balancers."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import text

from concord.config import Settings
from concord.db import is_current
from concord.metrics import exposition

router = APIRouter(include_in_schema=False)


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up (says nothing of the database)."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> Response:
    """Ready to serve: the database answers and is migrated, and the store is writable."""
    checks: dict[str, str] = {}
    engine = request.app.state.engine
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
        if not getattr(request.app.state, "schema_current", False):
            request.app.state.schema_current = is_current(engine)
        checks["schema"] = "ok" if request.app.state.schema_current else "run `concord init`"
    except Exception as exc:  # any failure means not ready; say which
        checks["database"] = f"unreachable: {type(exc).__name__}"
    checks["store"] = _store_check(request.app.state.settings)
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


def _store_check(settings: Settings) -> str:
    from concord.commons.chunks import open_store
    from concord.errors import ConcordError

    try:
        open_store(settings).backend.probe()
    except ConcordError as exc:
        return f"not ready: {exc.render()}"
    return "ok"


@router.get("/metrics")
def metrics() -> Response:
    """Prometheus text exposition."""
    return Response(exposition(), media_type="text/plain; version=0.0.4; charset=utf-8")
