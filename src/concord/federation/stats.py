"""Read-only figures for the impact dashboard."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from concord.federation import evaluation
from concord.federation.evaluation import ModelSummary
from concord.federation.tables import CampaignModel, Round, Update


def contributions(
    session: Session, since: datetime | None = None, until: datetime | None = None
) -> dict[int, dict[str, float]]:
    """member_id → jobs, rounds, examples, kWh and kg CO2e of its counted updates."""
    query = (
        select(Update, Round)
        .join(Round, Round.id == Update.round_id)
        .where(Round.status == "closed")
    )
    if since:
        query = query.where(Update.received_at >= since)
    if until:
        query = query.where(Update.received_at < until)
    out: dict[int, dict[str, float]] = defaultdict(
        lambda: {
            "jobs": 0.0,
            "rounds": 0.0,
            "examples": 0.0,
            "energy_kwh": 0.0,
            "emissions_kg": 0.0,
        }
    )
    jobs: dict[int, set[int]] = defaultdict(set)
    for update, round_row in session.execute(query).all():
        row = out[update.member_id]
        row["rounds"] += 1
        row["examples"] += update.examples
        row["energy_kwh"] += update.energy_kwh
        row["emissions_kg"] += update.emissions_kg
        jobs[update.member_id].add(round_row.job_id)
    for member_id, job_ids in jobs.items():
        out[member_id]["jobs"] = float(len(job_ids))
    return dict(out)


def jobs_energy(session: Session) -> dict[int, dict[str, float]]:
    """job_id → kWh and kg CO2e measured at the nodes for the job's counted rounds."""
    out: dict[int, dict[str, float]] = defaultdict(lambda: {"energy_kwh": 0.0, "emissions_kg": 0.0})
    query = (
        select(Update, Round.job_id)
        .join(Round, Round.id == Update.round_id)
        .where(Round.status == "closed")
    )
    for update, job_id in session.execute(query).all():
        out[job_id]["energy_kwh"] += update.energy_kwh
        out[job_id]["emissions_kg"] += update.emissions_kg
    return dict(out)


def model_performance(session: Session) -> list[tuple[int, str, ModelSummary]]:
    """(campaign id, campaign title, summary) for each commons model that a campaign evaluated,
    from its newest campaign: the worst member, spread and means by income group."""
    repos = session.scalars(
        select(CampaignModel.repo).distinct().order_by(CampaignModel.repo)
    ).all()
    out: list[tuple[int, str, ModelSummary]] = []
    for repo in repos:
        m = evaluation.latest_for_model(session, repo)
        summary = next((s for s in reversed(m.models) if s.repo == repo), None) if m else None
        if m is not None and summary is not None and summary.cells:
            out.append((m.campaign_id, m.title, summary))
    return out
