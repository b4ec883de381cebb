"""The impact dashboard and the annual report, as server-rendered SVG and tables."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from concord.errors import N_
from concord.http import Db
from concord.impact import indicators
from concord.validation import OptionalYear, YearPath
from concord.web.render import render

router = APIRouter(include_in_schema=False)
NAV = [("/impact", N_("Impact"))]


@router.get("/impact", response_class=HTMLResponse)
def dashboard(request: Request, db: Db, year: OptionalYear = None) -> HTMLResponse:
    available, energy = indicators.jobs_energy(db)
    return render(
        request,
        "impact/dashboard.html",
        {
            "items": indicators.dashboard(db, year),
            "year": year,
            "energy": energy,
            "energy_available": available,
            "models": indicators.model_equity(db)[1],
            "report": False,
        },
    )


@router.get("/impact/report/{year}", response_class=HTMLResponse)
def report(request: Request, db: Db, year: YearPath) -> HTMLResponse:
    available, energy = indicators.jobs_energy(db)
    return render(
        request,
        "impact/dashboard.html",
        {
            "items": indicators.dashboard(db, year),
            "year": year,
            "energy": energy,
            "energy_available": available,
            "models": indicators.model_equity(db)[1],
            "report": True,
        },
    )
