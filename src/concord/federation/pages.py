"""Pages: jobs, and a job's rounds with its accuracy curve and participants by region."""

from __future__ import annotations

from collections import Counter

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from concord.errors import N_
from concord.federation import jobs
from concord.federation.tables import Job, Round, Update
from concord.http import Db
from concord.members.countries import country
from concord.members.tables import Member
from concord.validation import Id
from concord.web.render import render

router = APIRouter(include_in_schema=False)
NAV = [("/jobs", N_("Jobs"))]


@router.get("/jobs", response_class=HTMLResponse)
def job_list(request: Request, db: Db) -> HTMLResponse:
    rows = db.scalars(select(Job).order_by(Job.id.desc())).all()
    return render(request, "federation/jobs.html", {"rows": rows})


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, job_id: Id, db: Db) -> HTMLResponse:
    job = jobs.get_job(db, job_id)
    rounds = db.scalars(select(Round).where(Round.job_id == job.id).order_by(Round.id)).all()
    closed = [r for r in rounds if r.status == "closed"]
    points = [(r.number, float(r.metrics.get("accuracy", 0.0))) for r in closed]
    members = {m.id: m for m in db.scalars(select(Member)).all()}
    taking_part = {
        u.member_id
        for u in db.scalars(
            select(Update).join(Round, Round.id == Update.round_id).where(Round.job_id == job.id)
        )
    }
    regions = Counter(country(members[i].country_code).region for i in taking_part)
    width, height = 480, 180
    total = max(1, int(job.spec.get("rounds", 1)))
    path = " ".join(
        f"{40 + (n - 1) * (width - 60) / max(1, total - 1):.1f},"
        f"{height - 20 - a * (height - 40):.1f}"
        for n, a in points
    )
    return render(
        request,
        "federation/job.html",
        {
            "job": job,
            "rounds": rounds,
            "points": points,
            "path": path,
            "width": width,
            "height": height,
            "regions": sorted(regions.items()),
            "members": members,
            "achieved": jobs.achieved_privacy(db, job),
        },
    )
