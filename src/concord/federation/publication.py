"""A completed job's model goes to the commons, with its card and the provenance the hub knows.

The spec's `publish_as` names the repository (`owner/name`, the owner a member). Publishing runs
inside the transaction that finishes the job but in a savepoint: a refusal (unknown owner, a
blocking standard, a bad licence) is recorded on the job instead of undoing the last round, and
the model stays in the data folder where a person can publish it later.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from concord.commons import repositories
from concord.commons.chunks import open_store
from concord.config import Settings
from concord.errors import N_, ConcordError, Conflict
from concord.federation.privacy import accountant, mechanism
from concord.federation.tables import Job, Round, Update
from concord.governance.jobspec import JobSpec
from concord.governance.standards import evaluate
from concord.members.tables import Member


def provenance(session: Session, job: Job) -> dict[str, Any]:
    """What a reader of the model needs to trace it back to the decision and the rounds."""
    spec = JobSpec.model_validate(job.spec)
    rounds = session.scalars(
        select(Round).where(Round.job_id == job.id, Round.status == "closed").order_by(Round.number)
    ).all()
    ids = sorted({m for r in rounds for m in r.participants})
    slugs = dict(
        session.execute(select(Member.id, Member.slug).where(Member.id.in_(ids))).tuples().all()
    )
    return {
        "trained_with": "concord federated learning",
        "decision": job.decision_id,
        "proposal": job.proposal_id,
        "reference": job.reference,
        "job": job.id,
        "task": spec.task,
        "strategy": spec.strategy.model_dump(mode="json"),
        "local_training": spec.local.model_dump(mode="json"),
        "privacy": spec.privacy.model_dump(mode="json"),
        # What the run applied and measured, not what the spec asked for (None: no DP).
        "privacy_achieved": achieved(rounds),
        "privacy_record_level": record_privacy(session, job),
        "finish_reason": job.finish_reason,
        "participants": [slugs[i] for i in ids if i in slugs],
        "rounds": [
            {
                "number": r.number,
                "participants": sorted(slugs.get(m, str(m)) for m in r.participants),
                "examples": r.examples,
                "aggregate_sha256": r.digest,
                "log_index": r.log_index,
                **({"privacy": r.privacy} if r.privacy else {}),
            }
            for r in rounds
        ],
        "final_sha256": job.digest,
    }


def achieved(rounds: Sequence[Round]) -> dict[str, Any] | None:
    return mechanism.achieved([r.privacy for r in rounds])


def record_privacy(session: Session, job: Job) -> dict[str, Any] | None:
    """Record-level ε of DP-SGD in the nodes' local training (the largest over members, each
    composed over the rounds it trained), or None unless EVERY counted update reports that it
    applied at least the spec's noise multiplier."""
    spec = JobSpec.model_validate(job.spec)
    dp = spec.local.dp_sgd
    if dp is None:
        return None
    updates = session.scalars(
        select(Update)
        .join(Round, Round.id == Update.round_id)
        .where(Round.job_id == job.id, Round.status == "closed")
    ).all()
    if not updates or any(
        float(u.metrics.get("dp_sgd_noise", 0)) < dp.noise_multiplier for u in updates
    ):
        return None
    rounds: dict[int, int] = {}
    examples: dict[int, int] = {}
    for u in updates:
        rounds[u.member_id] = rounds.get(u.member_id, 0) + 1
        examples[u.member_id] = min(examples.get(u.member_id, u.examples), u.examples)
    config = spec.local.model_dump()
    worst = max(
        accountant.record_epsilon(rounds[m], examples[m], config, dp.noise_multiplier, dp.delta)
        for m in rounds
    )
    return {
        "epsilon": round(worst, 6),
        "delta": dp.delta,
        "noise_multiplier": dp.noise_multiplier,
        "clip_norm": dp.clip_norm,
        "level": "record",
        "accountant": "rdp",
    }


def outcome_context(session: Session, job: Job) -> dict[str, Any]:
    """What standards see of a finished job (`job.*`): its spec, with `job.privacy.achieved`
    the privacy the run applied and measured (null when it applied none)."""
    rounds = session.scalars(
        select(Round).where(Round.job_id == job.id, Round.status == "closed").order_by(Round.number)
    ).all()
    context = JobSpec.model_validate(job.spec).context()
    context["job"]["privacy"]["achieved"] = achieved(rounds)
    return context


class OutcomeRefused(Conflict):
    code = "federation.outcome_refused"
    message = N_("The run breaks adopted standards: {rules}")


def publish(session: Session, settings: Settings, job: Job, folder: Path, card: str) -> None:
    """Publishes `folder`'s model.safetensors and README.md as `publish_as`, if the spec asks."""
    spec = JobSpec.model_validate(job.spec)
    if not spec.publish_as:
        return
    owner_slug, _, name = spec.publish_as.partition("/")
    savepoint = session.begin_nested()
    try:
        owner = session.scalars(select(Member).where(Member.slug == owner_slug)).first()
        if owner is None or not name:
            raise repositories.BadRepository(reason=f"no member “{owner_slug}” to own the model")
        # The standards checked when the job was created saw the spec; here they see what
        # happened (e.g. `job.privacy.achieved.epsilon`).
        report = evaluate(session, "job", outcome_context(session, job))
        if report.blocking_failures:
            raise OutcomeRefused(
                rules="; ".join(
                    f"{r.standard}/{r.rule}: {r.explanation}" for r in report.blocking_failures
                )
            )
        revision = repositories.publish_model(
            session,
            open_store(settings),
            owner,
            name,
            {"model.safetensors": folder / "model.safetensors", "README.md": folder / "README.md"},
            licence=spec.licence,
            card_text=card,
            provenance=provenance(session, job),
            message=f"{job.title}: final model of job {job.id}",
        )
        savepoint.commit()
    except ConcordError as error:
        savepoint.rollback()
        job.publication = {
            "repository": spec.publish_as,
            "error": error.code,
            "message": str(error),
        }
        return
    job.model_repo = spec.publish_as
    job.publication = {"repository": spec.publish_as, "revision": revision.sha}
