"""An adopted project becomes a job: governance announces it, federation listens."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from concord.config import get_settings
from concord.events import delivering_for, subscribe
from concord.federation import jobs
from concord.federation.tables import Job
from concord.governance.jobspec import JobSpec


@subscribe("governance.project_adopted")
def project_adopted(session: Session, payload: dict[str, Any]) -> None:
    if session.scalars(select(Job).where(Job.proposal_id == payload["proposal_id"])).first():
        return  # delivered twice after a crash: the job exists
    # The delivering hub's settings, not the process's: a demo or a test serves a hub whose
    # data folder is not the one in the environment, and the job's files belong in it.
    jobs.create_job(
        session,
        delivering_for.get() or get_settings(),
        JobSpec.model_validate(payload["spec"]),
        title=payload["title"],
        reference=payload.get("reference", ""),
        proposal_id=payload["proposal_id"],
        decision_id=payload.get("decision_id"),
    )
