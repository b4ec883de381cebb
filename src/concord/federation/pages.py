"""Pages: jobs, and a job's rounds with its accuracy curve and participants by region;
evaluation campaigns with their model × member matrix; the model panel of the commons."""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from concord.errors import N_
from concord.federation import evaluation, jobs, robustness
from concord.federation.evaluation import Matrix
from concord.federation.tables import Job, Round, Update
from concord.http import Db
from concord.i18n import gettext
from concord.members.countries import country
from concord.members.tables import Member
from concord.validation import Id
from concord.web.panels import panel
from concord.web.render import environment, render

router = APIRouter(include_in_schema=False)


def _federation(message: str) -> str:
    return gettext(message, domain="federation")


NAV = [("/jobs", N_("Jobs")), ("/campaigns", N_("Campaigns"))]


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
    # What the robust rule did to each member's update, and who keeps being left out.
    flagged = robustness.flagged(rounds)
    discounted = [
        (r, [{**rec, "why": robustness.explain(rec, _federation)} for rec in r.robustness])
        for r in closed
        if r.robustness
    ]
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
            "flagged": sorted(flagged.items()),
            "discounted": discounted,
            "actions": robustness.ACTIONS,
            "achieved": jobs.achieved_privacy(db, job),
            "final": _final_model(db, job.id),
            "during": round_evaluations(db, job.id, members),
        },
    )


def round_evaluations(db: Session, job_id: int, members: dict[int, Member]) -> dict[str, Any]:
    """Each member's accuracy of the model it received in each evaluated round (the previous
    round's global model, on its own test data), with the worst member and the spread
    (best minus worst) per round. Updates of expired attempts were never counted: left out."""
    found = db.execute(
        select(Round.number, Update.member_id, Update.evaluation)
        .join(Round, Round.id == Update.round_id)
        .where(
            Round.job_id == job_id,
            Round.status.in_(("open", "closed")),
            Update.evaluation.is_not(None),
        )
        .order_by(Round.number)
    ).all()
    by_round: dict[int, dict[str, float]] = {}
    for number, member_id, metrics in found:
        if metrics and "accuracy" in metrics:
            slug = members[member_id].slug
            by_round.setdefault(number, {})[slug] = float(metrics["accuracy"])
    rows: list[dict[str, Any]] = []
    for number, accuracy in sorted(by_round.items()):
        worst = min(accuracy, key=lambda slug: (accuracy[slug], slug))
        rows.append(
            {
                "round": number,
                "accuracy": accuracy,
                "worst_member": worst,
                "worst": accuracy[worst],
                "spread": max(accuracy.values()) - accuracy[worst],
            }
        )
    names = sorted({slug for accuracy in by_round.values() for slug in accuracy})
    return {"members": names, "rows": rows}


def _final_model(db: Session, job_id: int) -> Matrix | None:
    """The campaign the hub opened for the job's published model: its accuracy by member."""
    campaign_id = evaluation.campaign_for_job(db, job_id)
    return evaluation.matrix(db, campaign_id) if campaign_id is not None else None


@router.get("/campaigns", response_class=HTMLResponse)
def campaign_list(request: Request, db: Db) -> HTMLResponse:
    campaigns = evaluation.list_campaigns(db)
    models = {c.id: evaluation.campaign_models(db, c.id) for c in campaigns}
    return render(request, "federation/campaigns.html", {"rows": campaigns, "models": models})


@router.get("/campaigns/{campaign_id}", response_class=HTMLResponse)
def campaign_page(request: Request, campaign_id: Id, db: Db) -> HTMLResponse:
    m = evaluation.matrix(db, campaign_id)
    return render(
        request,
        "federation/campaign.html",
        {"m": m, "rows": matrix_rows(m), "groups": group_rows(m)},
    )


def matrix_rows(m: Matrix) -> list[dict[str, Any]]:
    """One row per member, one entry per model: its result, or why there is none."""
    rows: dict[str, dict[str, Any]] = {}
    for index, model in enumerate(m.models):
        for cell in model.cells:
            row = rows.setdefault(cell.member, {"member": cell, "entries": {}})
            row["member"] = cell
            row["entries"][index] = {"value": cell.metrics.get(m.metric), "cell": cell}
        for slug in model.declined:
            rows.setdefault(slug, {"member": None, "entries": {}})["entries"][index] = {
                "status": "declined"
            }
        for slug in model.pending:
            status = "held" if slug in model.held else "pending"
            rows.setdefault(slug, {"member": None, "entries": {}})["entries"][index] = {
                "status": status
            }
    return [{"slug": slug, **rows[slug]} for slug in sorted(rows)]


# Income groups read from the poorest up, as the equity question asks; other groups by name.
POOREST_FIRST = {"low": 0, "lower-middle": 1, "upper-middle": 2, "high": 3}


def group_rows(m: Matrix) -> list[tuple[str, str, list[float | None]]]:
    """(dimension, group, each model's mean) for regions, income groups and blocs."""
    out: list[tuple[str, str, list[float | None]]] = []
    for dimension, attribute in (
        ("region", "by_region"),
        ("income", "by_income"),
        ("bloc", "by_bloc"),
    ):
        names = sorted(
            {k for model in m.models for k in getattr(model, attribute)},
            key=lambda name: (POOREST_FIRST.get(name, len(POOREST_FIRST)), name),
        )
        for name in names:
            out.append(
                (dimension, name, [getattr(model, attribute).get(name) for model in m.models])
            )
    return out


@panel("commons.model")
def how_it_works_for_whom(request: Request, db: Session, context: dict[str, Any]) -> Markup | None:
    """The commons model page's section from the newest campaign that evaluated the model."""
    repo_id = f"{context['repo'].owner}/{context['repo'].name}"
    m = evaluation.latest_for_model(db, repo_id)
    if m is None:
        return None
    summary = next((s for s in reversed(m.models) if s.repo == repo_id), None)
    if summary is None:
        return None
    html = environment().get_template("federation/model_panel.html").render(m=m, s=summary)
    return Markup(html)  # noqa: S704 — rendered by the autoescaping environment
