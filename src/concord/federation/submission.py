"""Receiving a node's update: the checks made before its body is read, those of the body made
before the job's lock is taken, and its counting (or its coded, logged refusal) under the lock;
the masked vector of a SecAgg+ round; a node declining a round. An update is counted at most
once: one row per member and round, and a node resending after a lost answer gets the same
receipt."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from sqlalchemy import select
from sqlalchemy.orm import Session

from concord.config import Settings
from concord.db import utcnow
from concord.errors import N_, ConcordError, Conflict, Forbidden, Invalid
from concord.federation.files import folder
from concord.federation.parameters import (
    TensorFile,
    check_compatible_file,
    file_sha256,
    sync_file,
    sync_folder,
)
from concord.federation.rounds import UnknownJob, current_round, lock
from concord.federation.tables import Job, Node, Round, Update
from concord.ledger.log import append, canonical_json
from concord.ledger.tables import LogEntry
from concord.members.keys import verify
from concord.members.tables import Member


class RoundClosed(Conflict):
    code = "federation.round_closed"
    message = N_("Round {round} of job {job} is not open; a late update is not mixed in.")


class NotSelected(Forbidden):
    code = "federation.not_selected"
    message = N_("Member “{member}” was not selected for round {round} of job {job}.")


class DuplicateUpdate(Conflict):
    code = "federation.duplicate_update"
    message = N_("Member “{member}” already sent its update for round {round}.")


class BadUpdate(Invalid):
    code = "federation.bad_update"
    message = N_("The update is refused: {reason}")


def update_message(
    job: int,
    round_number: int,
    member: str,
    sha256: str,
    examples: int,
    evaluation: dict[str, float] | None = None,
) -> bytes:
    """What a node signs for its update; with `evaluation` (its metrics of the model it
    received, on its own test data) when it sends one, so that the hub cannot alter them."""
    message: dict[str, object] = {
        "job": job,
        "round": round_number,
        "member": member,
        "sha256": sha256,
        "examples": examples,
    }
    if evaluation is not None:
        message["evaluation"] = evaluation
    return canonical_json(message)


def check_evaluation(evaluation: dict[str, float] | None) -> dict[str, float] | None:
    """A node's round evaluation as the hub keeps it and checks its signature over: finite
    numbers, an accuracy, and a positive whole example count (`num_examples`, an integer as
    the node signed it, though the header's parser reads every number as a float)."""
    if evaluation is None:
        return None
    examples = evaluation.get("num_examples")
    if examples is None or not 0 < examples < 10**9 or examples != int(examples):
        raise BadUpdate(reason=N_("an evaluation needs a positive number of examples"))
    if "accuracy" not in evaluation:
        raise BadUpdate(reason=N_("an evaluation needs an accuracy"))
    if not all(math.isfinite(v) for v in evaluation.values()):
        raise BadUpdate(reason=N_("an evaluation has finite numbers only"))
    return {**evaluation, "num_examples": int(examples)}


@dataclass
class Receipt:
    """What the hub answers to an update: the row, and whether it had been received before
    (a node resending after a lost answer gets the same receipt; nothing is counted twice)."""

    update: Update
    repeated: bool = False


def incoming(settings: Settings, job: Job) -> Path:
    """Where an update's body is written while it arrives, before it is checked."""
    path = folder(settings) / f"job-{job.id}" / "incoming"
    path.mkdir(parents=True, exist_ok=True)
    return path


def check_received(settings: Settings, job_id: int, received: Path) -> str:
    """The checks of an update's body that need no database, made before the job's lock is
    taken so that updates arriving together are checked in parallel: its tensors against the
    job's model (every checkpoint has the initial one's names, shapes and dtypes), values
    finite. Syncs the file to disk; returns its SHA-256."""
    reference = folder(settings) / f"job-{job_id}" / "round-0.safetensors"
    if not reference.exists():
        raise UnknownJob(job=job_id)
    with TensorFile(reference) as model, TensorFile(received) as candidate:
        check_compatible_file(model, candidate)
    sync_file(received)
    return file_sha256(received)


def submit(
    session: Session,
    settings: Settings,
    job: Job,
    round_number: int,
    member: Member,
    received: Path,
    *,
    sha256: str,
    examples: int,
    metrics: dict[str, float],
    signature: str,
    energy_kwh: float = 0.0,
    emissions_kg: float = 0.0,
    evaluation: dict[str, float] | None = None,
) -> Receipt:
    """Takes one node's update from `received` (a file in `incoming` that passed
    `check_received`, moved into place when accepted); refusals are coded, logged, and change
    nothing else."""
    lock(session, job)
    row = current_round(session, job)
    try:
        if not 0 < examples < 10**9:
            raise BadUpdate(reason=N_("the number of examples must be positive"))
        evaluation = check_evaluation(evaluation)
        verify(
            session,
            member,
            update_message(job.id, round_number, member.slug, sha256, examples, evaluation),
            signature,
        )
        earlier = _counted(session, job, round_number, member)
        if earlier is not None and earlier.sha256 == sha256:
            return Receipt(earlier, repeated=True)
        if row is None or row.number != round_number:
            raise RoundClosed(round=round_number, job=job.id)
        if member.id not in row.participants:
            raise NotSelected(member=member.slug, round=round_number, job=job.id)
        if earlier is not None and earlier.round_id == row.id:
            raise DuplicateUpdate(member=member.slug, round=round_number)
    except (Invalid, RoundClosed, NotSelected, DuplicateUpdate) as exc:
        refuse(
            session,
            job,
            round_number,
            member,
            exc,
            sha256=sha256,
            examples=examples,
            signature=signature,
            evaluation=evaluation,
        )
    path = f"job-{job.id}/round-{round_number}/attempt-{row.attempt}/member-{member.id}.safetensors"
    target = folder(settings) / path
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(received, target)
    sync_folder(target.parent)
    update = Update(
        round_id=row.id,
        member_id=member.id,
        path=path,
        sha256=sha256,
        examples=examples,
        metrics={k: float(v) for k, v in metrics.items()},
        energy_kwh=max(0.0, energy_kwh),
        emissions_kg=max(0.0, emissions_kg),
        evaluation=evaluation,
        signature=signature,
        received_at=utcnow(),
    )
    session.add(update)
    node = session.scalars(select(Node).where(Node.member_id == member.id)).first()
    if node is not None:
        node.last_seen = update.received_at  # a node that delivers is alive
    session.flush()
    return Receipt(update)


def submit_masked(
    session: Session,
    settings: Settings,
    row: Round,
    member: Member,
    received: Path,
    *,
    sha256: str,
    examples: int,
    metrics: dict[str, float],
    signature: str,
    evaluation: dict[str, float] | None = None,
) -> Update:
    """SecAgg+ stage 3: a node's masked vector becomes its update for the round (the caller
    has checked the stage; `secure_round.check_masked`). Signed like any update; its
    evaluation travels beside the masked vector, in the clear (the member reveals it)."""
    if not 0 < examples < 10**9:
        raise BadUpdate(reason=N_("the number of examples must be positive"))
    evaluation = check_evaluation(evaluation)
    verify(
        session,
        member,
        update_message(row.job_id, row.number, member.slug, sha256, examples, evaluation),
        signature,
    )
    path = f"job-{row.job_id}/round-{row.number}/attempt-{row.attempt}/member-{member.id}.u32"
    target = folder(settings) / path
    target.parent.mkdir(parents=True, exist_ok=True)
    sync_file(received)
    os.replace(received, target)
    sync_folder(target.parent)
    update = Update(
        round_id=row.id,
        member_id=member.id,
        path=path,
        sha256=sha256,
        examples=examples,
        metrics={k: float(v) for k, v in metrics.items()},
        evaluation=evaluation,
        signature=signature,
        received_at=utcnow(),
    )
    session.add(update)
    session.flush()
    return update


def expect_update(session: Session, job: Job, round_number: int, member: Member) -> None:
    """Refuses an update that could not be taken whatever its body, and that nobody may log:
    for a round that is not open and that the member was not chosen for, or from a member not
    selected. Called before the body is read, so that such an update never touches the disk.
    Not logged: the signature covers the body's SHA-256, not known yet, and an unverified act
    is nobody's (see `refuse`). A participant's late update, and a node resending a counted
    update after a lost answer, pass: `submit` logs the first's refusal and gives the second
    its receipt."""
    row = current_round(session, job)
    if _counted(session, job, round_number, member) is not None:
        return
    if row is None or row.number != round_number:
        if chosen(session, job, round_number, member):
            # A participant's late update is its own act: read it (bounded by the model's
            # size) so that `submit` can check its signature and log the refusal.
            return
        raise RoundClosed(round=round_number, job=job.id)
    if member.id not in row.participants:
        raise NotSelected(member=member.slug, round=round_number, job=job.id)


def largest_update(settings: Settings, job: Job) -> int:
    """The most bytes an update of `job` may have: its tensors are the initial model's names,
    shapes and dtypes, so only the safetensors header (names, metadata) may differ in size."""
    reference = folder(settings) / f"job-{job.id}" / "round-0.safetensors"
    if not reference.exists():
        raise UnknownJob(job=job.id)
    return reference.stat().st_size + UPDATE_HEADER_SLACK


# Room for a differently written safetensors header (key order, metadata) in an update.
UPDATE_HEADER_SLACK = 1024 * 1024


def refuse(
    session: Session,
    job: Job,
    round_number: int,
    member: Member,
    error: ConcordError,
    *,
    sha256: str,
    examples: int,
    signature: str,
    evaluation: dict[str, float] | None = None,
) -> NoReturn:
    """Raises `error` for an update; logs the refusal first (committed) only when the update
    was signed with the member's key and the member was chosen for that round. Anything else
    is nobody's act: logging it would let any token holder write into the public log."""
    message = update_message(job.id, round_number, member.slug, sha256, examples, evaluation)
    if _signed(session, member, message, signature) and chosen(session, job, round_number, member):
        _refusal(session, job, round_number, member, error.code)
    raise error


def _signed(session: Session, member: Member, message: bytes, signature: str) -> bool:
    """Whether `signature` is the member's over `message` (no key, no signature: False)."""
    try:
        verify(session, member, message, signature)
    except ConcordError:
        return False
    return True


def chosen(session: Session, job: Job, round_number: int, member: Member) -> bool:
    """Whether the member was chosen in any attempt of this round."""
    rows = session.scalars(
        select(Round.participants).where(Round.job_id == job.id, Round.number == round_number)
    ).all()
    return any(member.id in (participants or []) for participants in rows)


class DeclineUnsigned(Invalid):
    code = "federation.decline_unsigned"
    message = N_("A node declines a round by signing it with the member's key (field signature).")


def decline_message(job: int, round_number: int, member: str) -> bytes:
    """What a node signs to decline a round."""
    return canonical_json(
        {"purpose": "concord.round-decline", "job": job, "round": round_number, "member": member}
    )


def decline(
    session: Session, job: Job, round_number: int, member: Member, *, signature: str
) -> LogEntry:
    """Logs that the member's node declines a round (site policy): only the open round of a
    running job, only a member chosen for it, only signed with the member's key. The caller
    commits."""
    if not signature:
        raise DeclineUnsigned()
    lock(session, job)
    row = current_round(session, job)
    if job.status != "running" or row is None or row.number != round_number:
        raise RoundClosed(round=round_number, job=job.id)
    if member.id not in row.participants:
        raise NotSelected(member=member.slug, round=round_number, job=job.id)
    sent = session.scalars(
        select(Update.id).where(Update.round_id == row.id, Update.member_id == member.id)
    ).first()
    if sent is not None:  # its update counts already: a decline now would contradict the log
        raise DuplicateUpdate(member=member.slug, round=round_number)
    verify(session, member, decline_message(job.id, round_number, member.slug), signature)
    return append(
        session,
        "federation.node_declined",
        {"job": job.id, "round": round_number, "member": member.slug},
        member_id=member.id,
    )


def _counted(session: Session, job: Job, round_number: int, member: Member) -> Update | None:
    """The member's update for this round that counts: in the open attempt or in the closed
    one (an expired attempt's updates were never counted)."""
    return session.scalars(
        select(Update)
        .join(Round, Round.id == Update.round_id)
        .where(
            Round.job_id == job.id,
            Round.number == round_number,
            Round.status.in_(("open", "closed")),
            Update.member_id == member.id,
        )
        .order_by(Update.id.desc())
    ).first()


def _refusal(session: Session, job: Job, round_number: int, member: Member, code: str) -> None:
    """Logs a refusal: whatever the request did is rolled back, the refusal is committed (one
    session — on SQLite a second one would wait for this one's lock)."""
    job_id, slug, member_id = job.id, member.slug, member.id
    session.rollback()
    append(
        session,
        "federation.update_refused",
        {"job": job_id, "round": round_number, "member": slug, "reason": code},
        member_id=member_id,
    )
    session.commit()
