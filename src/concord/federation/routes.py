"""HTTP API of the federation: nodes register, long-poll for work, fetch parameters, and push
signed updates. The hub never connects to a node."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from concord import metrics as prometheus
from concord.federation import jobs
from concord.federation.tables import Job, Round
from concord.http import Db, allow_large_bodies
from concord.members.auth import CurrentPerson
from concord.members.people import acting_member

router = APIRouter(prefix="/api/federation", tags=["federation"])
allow_large_bodies("/api/federation/jobs/")


class NodeRegistration(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tasks: list[str] = Field(description="Tasks installed at the node")


@router.post("/nodes")
def register(body: NodeRegistration, db: Db, person: CurrentPerson) -> dict[str, Any]:
    """Registers (or refreshes) your member's node and the tasks installed there."""
    member = acting_member(db, person)
    node = jobs.register_node(db, member, body.tasks)
    db.commit()
    return {"member": member.slug, "tasks": node.tasks}


@router.get("/work")
def work(request: Request, db: Db, person: CurrentPerson, wait: float = 0.0) -> Response:
    """The round your node should train now; waits up to `wait` seconds (long polling)."""
    settings = request.app.state.settings
    member = acting_member(db, person)
    jobs.register_node(db, member, _tasks_of(db, member.id))
    db.commit()
    deadline = time.monotonic() + max(0.0, min(wait, 60.0))
    while True:
        found = jobs.work_for(db, settings, member)
        db.commit()  # advancing a job is work done for everyone; never hold the lock
        if found is not None or time.monotonic() >= deadline:
            break
        time.sleep(0.25)
    if found is None:
        return Response(status_code=204)
    return Response(json.dumps(found), media_type="application/json")


def _tasks_of(db: Db, member_id: int) -> list[str]:
    from concord.federation.tables import Node

    node = db.scalars(select(Node).where(Node.member_id == member_id)).first()
    return list(node.tasks) if node else []


@router.get("/jobs/{job_id}/rounds/{number}/parameters")
def parameters(job_id: int, number: int, db: Db, request: Request) -> Response:
    """The global parameters a round starts from (safetensors)."""
    job = jobs.get_job(db, job_id)
    row = db.scalars(
        select(Round)
        .where(Round.job_id == job.id, Round.number == number)
        .order_by(Round.id.desc())
    ).first()
    if row is None:
        raise jobs.RoundClosed(round=number, job=job_id)
    data = (jobs.folder(request.app.state.settings) / row.parameters).read_bytes()
    return Response(data, media_type="application/octet-stream")


@router.post("/jobs/{job_id}/rounds/{number}/updates", status_code=201)
async def update(
    job_id: int,
    number: int,
    request: Request,
    db: Db,
    person: CurrentPerson,
    x_concord_examples: Annotated[int, Header()],
    x_concord_signature: Annotated[str, Header()],
    x_concord_metrics: Annotated[str, Header()] = "{}",
    x_concord_energy_kwh: Annotated[float, Header()] = 0.0,
    x_concord_emissions_kg: Annotated[float, Header()] = 0.0,
) -> dict[str, Any]:
    """A node's signed update (safetensors body) for the open round."""
    settings = request.app.state.settings
    try:
        metrics = {k: float(v) for k, v in json.loads(x_concord_metrics).items()}
    except (ValueError, AttributeError) as exc:
        raise jobs.BadUpdate(reason="metrics must be a JSON object of numbers") from exc
    body = await request.body()

    def store() -> dict[str, Any]:
        # In a worker thread: waiting for the database lock must never block the event loop.
        member = acting_member(db, person)
        job = jobs.get_job(db, job_id)
        row = jobs.submit(
            db,
            settings,
            job,
            number,
            member,
            body,
            examples=x_concord_examples,
            metrics=metrics,
            signature=x_concord_signature,
            energy_kwh=x_concord_energy_kwh,
            emissions_kg=x_concord_emissions_kg,
        )
        db.commit()
        prometheus.count("update")
        prometheus.moved("in", len(body))
        jobs.advance(db, settings, job)
        db.commit()
        return {"update": row.id, "sha256": row.sha256}

    return await run_in_threadpool(store)


@router.post("/jobs/{job_id}/rounds/{number}/decline")
def decline(job_id: int, number: int, db: Db, person: CurrentPerson) -> dict[str, Any]:
    """Your node declines a round its site policy does not allow; the refusal is logged."""
    from concord.ledger.log import append

    member = acting_member(db, person)
    job = jobs.get_job(db, job_id)
    append(
        db,
        "federation.node_declined",
        {"job": job.id, "round": number, "member": member.slug},
        member_id=member.id,
    )
    db.commit()
    return {"declined": True}


@router.get("/jobs")
def list_jobs(db: Db) -> list[dict[str, Any]]:
    """Federated jobs with their progress."""
    return [_job(db, j) for j in db.scalars(select(Job).order_by(Job.id.desc())).all()]


@router.get("/jobs/{job_id}")
def get_job(job_id: int, db: Db) -> dict[str, Any]:
    """One job with every round."""
    return _job(db, jobs.get_job(db, job_id), rounds=True)


def _job(db: Db, job: Job, rounds: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": job.id,
        "title": job.title,
        "reference": job.reference,
        "status": job.status,
        "rounds_done": job.rounds_done,
        "rounds": job.spec.get("rounds"),
        "task": job.spec.get("task"),
        "digest": job.digest,
        "decision": job.decision_id,
    }
    if rounds:
        data["rounds_detail"] = [
            {
                "number": r.number,
                "attempt": r.attempt,
                "status": r.status,
                "participants": r.participants,
                "examples": r.examples,
                "metrics": r.metrics,
                "digest": r.digest,
                "log_index": r.log_index,
            }
            for r in db.scalars(
                select(Round).where(Round.job_id == job.id).order_by(Round.id)
            ).all()
        ]
    return data
