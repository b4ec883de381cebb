"""The log's page: its size, the latest signed head, entries by kind, and any one entry with
its inclusion proof."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select

from concord.errors import N_
from concord.http import Db
from concord.hubkey import load_or_create, public_key_base64
from concord.ledger import log
from concord.ledger.tables import LogEntry
from concord.validation import OptionalQueryIndex
from concord.web.render import render

router = APIRouter(include_in_schema=False)
NAV = [("/log", N_("Log"))]
PER_PAGE = 50


@router.get("/log", response_class=HTMLResponse)
def log_page(
    request: Request,
    db: Db,
    kind: str = "",
    before: OptionalQueryIndex = None,
    entry: OptionalQueryIndex = None,
) -> HTMLResponse:
    key = load_or_create(request.app.state.settings)
    head = log.latest_head(db, key)
    kinds = db.execute(
        select(LogEntry.kind, func.count()).group_by(LogEntry.kind).order_by(LogEntry.kind)
    ).all()
    query = select(LogEntry).order_by(LogEntry.index.desc()).limit(PER_PAGE)
    if kind:
        query = query.where(LogEntry.kind == kind)
    if before is not None:
        query = query.where(LogEntry.index < before)
    rows = db.scalars(query).all()
    shown = None
    if entry is not None and 0 <= entry < head.size:
        row = log.entry(db, entry)
        shown = {
            "entry": row,
            "proof": [p.hex() for p in log.inclusion_proof(db, entry, head.size)],
        }
    return render(
        request,
        "ledger/log.html",
        {
            "head": head,
            "public_key": public_key_base64(key),
            "kinds": kinds,
            "rows": rows,
            "kind": kind,
            "shown": shown,
            "older": rows[-1].index if len(rows) == PER_PAGE else None,
        },
    )
