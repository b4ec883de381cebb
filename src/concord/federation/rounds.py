"""A job's rows as every step finds them: the job itself, its open round, and the job's row
lock that keeps two hub processes from closing one round twice."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from concord.errors import N_, NotFound
from concord.federation.tables import Job, Round


class UnknownJob(NotFound):
    code = "federation.unknown_job"
    message = N_("There is no job {job}.")


def get_job(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise UnknownJob(job=job_id)
    return job


def current_round(session: Session, job: Job) -> Round | None:
    return session.scalars(
        select(Round)
        .where(Round.job_id == job.id, Round.status == "open")
        .order_by(Round.id.desc())
    ).first()


def lock(session: Session, job: Job) -> Job:
    """Takes the job's row lock (PostgreSQL: FOR UPDATE; SQLite: the write lock held anyway)
    so two hub processes never close the same round or count an update into a closing one."""
    session.execute(select(Job.id).where(Job.id == job.id).with_for_update())
    session.expire_all()  # what this session read before the lock may be stale now
    session.refresh(job)
    return job
