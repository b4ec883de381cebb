"""Jobs and rounds at the hub.

The hub holds no state outside the database and the store: `advance(job)` looks at the rows
and moves the job on (open a round, close a round whose updates are in or whose deadline has
passed, finish the job), and any hub process may call it — when a node asks for work, when an
update arrives, or from `concord job advance`. Each step is one transaction, so a hub killed at
any point resumes from the last completed round, and an update is counted at most once (one
row per member and round). Checkpoints and updates are safetensors files in the store.

Files are written to a temporary name, synced and renamed into place before the transaction
that refers to them commits (`files`): a crash leaves at worst a file that no row names, which
the next attempt overwrites. A server optimiser's state is checkpointed the same way, beside
the model. Receiving updates is `submission`, node registration `registration`, finding and
locking a job's open round `rounds`.
"""

from __future__ import annotations

import logging
import math
from contextlib import ExitStack
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from concord import metrics as prometheus
from concord.config import Settings
from concord.db import utcnow
from concord.errors import N_, Conflict
from concord.federation import evaluation, publication, robustness, secure_round
from concord.federation.card import model_card

# Split out by concept (files, rounds, registration, submission); their names stay importable
# from here, as callers and tests know them (the `as` form re-exports them).
from concord.federation.files import folder as folder
from concord.federation.files import read_parameters as read_parameters
from concord.federation.files import write_file as write_file
from concord.federation.parameters import (
    Parameters,
    TensorFile,
    digest,
    to_safetensors,
    write_safetensors,
)
from concord.federation.privacy import mechanism, secagg
from concord.federation.privacy.noise import fresh_generator, share_std
from concord.federation.registration import REGISTRATION_SKEW as REGISTRATION_SKEW
from concord.federation.registration import NodeUnregistered as NodeUnregistered
from concord.federation.registration import RegistrationStale as RegistrationStale
from concord.federation.registration import RegistrationUnsigned as RegistrationUnsigned
from concord.federation.registration import register_node as register_node
from concord.federation.registration import registration_message as registration_message
from concord.federation.registration import seen as seen
from concord.federation.rounds import UnknownJob as UnknownJob
from concord.federation.rounds import current_round as current_round
from concord.federation.rounds import get_job as get_job
from concord.federation.rounds import lock as lock
from concord.federation.strategies import Strategy, make_strategy
from concord.federation.strategies.base import StoredUpdate
from concord.federation.strategies.whole import stored_verdicts
from concord.federation.submission import UPDATE_HEADER_SLACK as UPDATE_HEADER_SLACK
from concord.federation.submission import BadUpdate as BadUpdate
from concord.federation.submission import DeclineUnsigned as DeclineUnsigned
from concord.federation.submission import DuplicateUpdate as DuplicateUpdate
from concord.federation.submission import NotSelected as NotSelected
from concord.federation.submission import Receipt as Receipt
from concord.federation.submission import RoundClosed as RoundClosed
from concord.federation.submission import check_received as check_received
from concord.federation.submission import chosen as chosen
from concord.federation.submission import decline as decline
from concord.federation.submission import decline_message as decline_message
from concord.federation.submission import expect_update as expect_update
from concord.federation.submission import incoming as incoming
from concord.federation.submission import largest_update as largest_update
from concord.federation.submission import refuse as refuse
from concord.federation.submission import submit as submit
from concord.federation.submission import submit_masked as submit_masked
from concord.federation.submission import update_message as update_message
from concord.federation.tables import Job, Node, Round, Update
from concord.federation.tasks.base import TaskData, load_task
from concord.governance.jobspec import JobSpec
from concord.governance.standards import evaluate
from concord.ledger.log import append
from concord.members.blocs import bloc_member_ids
from concord.members.directory import get_members
from concord.members.tables import Member

log = logging.getLogger("concord.federation")


class JobRefused(Conflict):
    code = "federation.job_refused"
    message = N_("The job breaks adopted standards: {rules}")


def eligible(session: Session, spec: JobSpec) -> set[int]:
    named = get_members(session, list(spec.participants.members))
    ids = {member.id for member in named if member.status == "active"}
    for bloc in spec.participants.blocs:
        ids |= set(bloc_member_ids(session, bloc))
    return ids


# The answer "no work" names the running jobs the node takes part in here, so that a node
# waiting on slower partners knows it is still needed.
WAITING_HEADER = "Concord-Jobs-Waiting"


def taking_part(session: Session, member: Member) -> list[int]:
    """The running jobs this member's node takes part in, chosen for the current round or
    not (a job whose task the node lacks never gives it work, so it is left out)."""
    node = session.scalars(select(Node).where(Node.member_id == member.id)).first()
    tasks = set(node.tasks or []) if node is not None else set()
    ids = []
    for job in session.scalars(select(Job).where(Job.status == "running").order_by(Job.id)):
        spec = JobSpec.model_validate(job.spec)
        if spec.task in tasks and member.id in eligible(session, spec):
            ids.append(job.id)
    return ids


def create_job(
    session: Session,
    settings: Settings,
    spec: JobSpec,
    *,
    title: str,
    reference: str = "",
    proposal_id: int | None = None,
    decision_id: int | None = None,
) -> Job:
    """A job from an adopted project (or the secretariat), checked against the standards."""
    report = evaluate(session, "job", spec.context())
    if report.blocking_failures:
        raise JobRefused(
            rules="; ".join(
                f"{r.standard}/{r.rule}: {r.explanation}" for r in report.blocking_failures
            )
        )
    _dp_settings(session, spec)  # impossible DP settings are refused before anything runs
    task = load_task(spec.task)
    job = Job(
        title=title,
        reference=reference,
        proposal_id=proposal_id,
        decision_id=decision_id,
        spec=spec.model_dump(mode="json"),
        status="running",
        rounds_done=0,
        conformance=report.to_json(),
        created_at=utcnow(),
    )
    session.add(job)
    session.flush()
    params = task.init_parameters(job.id)
    job.parameters = write_file(
        settings, f"job-{job.id}/round-0.safetensors", to_safetensors(params)
    )
    job.digest = digest(params)
    append(
        session,
        "federation.job_created",
        {
            "job": job.id,
            "title": title,
            "reference": reference,
            "decision": decision_id,
            "task": spec.task,
            "rounds": spec.rounds,
            "initial": job.digest,
        },
    )
    return job


def open_round(session: Session, settings: Settings, job: Job) -> Round | None:
    spec = JobSpec.model_validate(job.spec)
    # A node that has gone quiet would only make the round wait out its deadline.
    alive_since = utcnow() - timedelta(seconds=settings.node_timeout_s)
    nodes = {
        n.member_id
        for n in session.scalars(select(Node).where(Node.last_seen >= alive_since)).all()
        if spec.task in (n.tasks or [])
    }
    candidates = sorted(eligible(session, spec) & nodes)
    if len(candidates) < spec.min_participants:
        return None  # wait until enough members' nodes have registered
    number = job.rounds_done + 1
    attempt = 1 + len(
        session.scalars(
            select(Round.id).where(Round.job_id == job.id, Round.number == number)
        ).all()
    )
    strategy = make_strategy(spec.strategy)
    chosen = strategy.select(
        number * 100 + attempt, [str(c) for c in candidates], spec.clients_per_round, seed=job.id
    )
    sampling_rate = len(chosen) / len(candidates)
    if _over_budget(session, settings, job, spec, sampling_rate):
        return None
    now = utcnow()
    row = Round(
        job_id=job.id,
        number=number,
        attempt=attempt,
        status="open",
        participants=[int(c) for c in chosen],
        parameters=job.parameters,
        deadline=now + timedelta(seconds=spec.round_deadline_s),
        opened_at=now,
        examples=0,
        metrics={},
        digest="",
        privacy=_planned_privacy(session, job, spec, sampling_rate),
    )
    session.add(row)
    session.flush()
    return row


def advance(session: Session, settings: Settings, job: Job) -> bool:
    """Moves the job on as far as its rows allow; True if a round opened, closed or expired,
    or the job finished. The caller commits."""
    lock(session, job)
    if job.status != "running":
        return False
    spec = JobSpec.model_validate(job.spec)
    row = current_round(session, job)
    if row is None:
        if job.rounds_done >= spec.rounds:
            _finish(session, settings, job)
            return True
        return open_round(session, settings, job) is not None or job.status != "running"
    if spec.privacy.secagg is not None:
        return _advance_secure(session, settings, job, row, spec)
    updates = list(
        session.scalars(
            select(Update).where(Update.round_id == row.id).order_by(Update.member_id)
        ).all()
    )
    everyone = len(updates) >= len(row.participants)
    expired = utcnow() >= row.deadline
    if not everyone and not expired:
        return False
    if len(updates) < spec.min_participants:
        row.status = "expired"
        row.closed_at = utcnow()
        append(
            session,
            "federation.round_expired",
            {
                "job": job.id,
                "round": row.number,
                "attempt": row.attempt,
                "received": len(updates),
                "needed": spec.min_participants,
            },
        )
        open_round(session, settings, job)
        return True
    _close(session, settings, job, row, updates, spec)
    return True


def _advance_secure(
    session: Session, settings: Settings, job: Job, row: Round, spec: JobSpec
) -> bool:
    """A SecAgg+ round closes once its reveal stage has (secure_round): with the unmasked
    sum, or failed — logged, and another attempt opened — when it cannot be unmasked."""
    current = secure_round.state(session, row, spec)
    if not current.closed["reveal"]:
        return False
    updates = [current.masked[m] for m in sorted(current.masked)]
    try:  # at least t survivors suffice (min_participants is the bar for opening it)
        _close(session, settings, job, row, updates, spec, secure=current)
    except secagg.SecAggFailed as exc:
        row.status, row.closed_at = "failed", utcnow()
        log.warning("secure aggregation failed: %s", str(exc.params.get("reason", "")))
        append(
            session,
            "federation.secagg_failed",
            {
                "job": job.id,
                "round": row.number,
                "attempt": row.attempt,
                "survivors": len(updates),
                "reason": str(exc.params.get("reason", "")),
            },
        )
        open_round(session, settings, job)
    return True


def _due(session: Session, row: Round | None) -> bool:
    """Whether `advance` has something to do (read without the lock; `advance` looks again)."""
    if row is None:
        return True
    job = session.get(Job, row.job_id)
    if job is not None and JobSpec.model_validate(job.spec).privacy.secagg is not None:
        return secure_round.state(session, row, JobSpec.model_validate(job.spec)).closed["reveal"]
    received = session.scalar(
        select(func.count()).select_from(Update).where(Update.round_id == row.id)
    )
    return utcnow() >= row.deadline or (received or 0) >= len(row.participants)


def advance_all(session: Session, settings: Settings) -> tuple[bool, datetime | None]:
    """Advances every running job, committing each step; returns whether anything moved and
    the earliest deadline of the rounds left open (when to look again)."""
    moved = False
    ids = session.scalars(select(Job.id).where(Job.status == "running").order_by(Job.id)).all()
    session.commit()
    for job_id in ids:
        moved |= advance(session, settings, get_job(session, job_id))
        session.commit()
    deadline = session.scalar(
        select(Round.deadline)
        .join(Job, Job.id == Round.job_id)
        .where(Job.status == "running", Round.status == "open")
        .order_by(Round.deadline)
        .limit(1)
    )
    session.commit()
    return moved, deadline


def _close(
    session: Session,
    settings: Settings,
    job: Job,
    row: Round,
    updates: list[Update],
    spec: JobSpec,
    secure: secure_round.State | None = None,
) -> None:
    strategy = _strategy(settings, job, spec)
    verdicts: list[Any] = []
    if secure is not None:
        aggregate = _secure_aggregate(session, settings, job, row, strategy, secure)
    else:
        aggregate, verdicts = _plain_aggregate(session, settings, job, row, strategy, updates, spec)
    path = f"job-{job.id}/round-{row.number}.safetensors"
    sha = write_safetensors(folder(settings) / path, aggregate)
    state = strategy.state()
    if state:
        job.server_state = f"job-{job.id}/round-{row.number}.server.safetensors"
        write_safetensors(folder(settings) / job.server_state, state)
    prometheus.count("round")
    examples = sum(u.examples for u in updates)
    metrics = _finite(_evaluate(spec, aggregate, updates, examples, row.number), job, row)
    row.status, row.closed_at, row.examples = "closed", utcnow(), examples
    row.metrics, row.digest = metrics, sha
    members = {
        m.id: m.slug
        for m in session.scalars(
            select(Member).where(Member.id.in_([u.member_id for u in updates]))
        ).all()
    }
    content: dict[str, Any] = {
        "job": job.id,
        "round": row.number,
        "participants": sorted(members.values()),
        "examples": examples,
        "aggregate_sha256": row.digest,
        "metrics": metrics,
        "energy_kwh": round(sum(_finite_or_zero(u.energy_kwh) for u in updates), 9),
        **({"privacy": row.privacy} if row.privacy else {}),
        **(
            {"secure_aggregation": {"survivors": len(updates), "dropped": len(secure.dropped)}}
            if secure is not None
            else {}
        ),
    }
    if verdicts:
        before = robustness.flagged_before(session, job)
        row.robustness = robustness.records(verdicts, {str(k): v for k, v in members.items()})
        content["robustness"] = row.robustness
        session.flush()
        robustness.announce_flags(session, job, before)
    entry = append(session, "federation.round", content)
    row.log_index = entry.index
    job.parameters, job.digest, job.rounds_done = path, row.digest, row.number
    if job.rounds_done >= spec.rounds:
        _finish(session, settings, job)
    else:
        open_round(session, settings, job)


def _secure_aggregate(
    session: Session,
    settings: Settings,
    job: Job,
    row: Round,
    strategy: Strategy,
    current: secure_round.State,
) -> Parameters:
    """The strategy's server update on the mean the survivors' unmasked sum gives: weighted
    by examples, or — under DP with distributed noise — uniform over the chosen nodes, the
    round accounted with the noise shares of the survivors (unmeasurable here: the hub sees
    only the sum)."""
    start = read_parameters(settings, row.parameters)
    total = secure_round.unmasked_sum(folder(settings), current, secure_round.size_of(start))
    dp = _dp_settings(session, JobSpec.model_validate(job.spec))
    # Weighted by examples; under DP every chosen node weighs the same (mechanism).
    divisor = secure_round.survivors_weight(current) if dp is None else len(row.participants)
    mean = secure_round.unflatten(secagg.dequantise(total, current.scale, divisor), start)
    if dp is not None:
        row.privacy = _secure_privacy(session, job, row, dp, len(current.masked)).to_json()
    combined = mechanism.apply_mean(start, mean)
    updated = strategy.server_update(start, combined)
    return {k: v.astype(start[k].dtype, copy=False) for k, v in updated.items()}


def _secure_privacy(
    session: Session, job: Job, row: Round, dp: mechanism.Settings, survivors: int
) -> mechanism.RoundPrivacy:
    planned = row.privacy or {}
    record = secagg.round_privacy(
        dp,
        float(planned.get("clip_norm", dp.clip_norm)),
        len(row.participants),
        survivors,
        float(planned.get("sampling_rate", 1.0)),
    )
    return mechanism.account(mechanism.steps_of(privacy_records(session, job)), record, dp)


def _plain_aggregate(
    session: Session,
    settings: Settings,
    job: Job,
    row: Round,
    strategy: Strategy,
    updates: list[Update],
    spec: JobSpec,
) -> tuple[Parameters, list[Any]]:
    """The round's aggregate from the stored updates, and what a robust rule did to each."""
    verdicts: list[Any] = []
    with ExitStack() as files:
        stored = [
            StoredUpdate(
                files.enter_context(TensorFile(folder(settings) / u.path)),
                u.examples,
                str(u.member_id),
                dict(u.metrics),
            )
            for u in updates
        ]
        start = read_parameters(settings, row.parameters)
        dp = _dp_settings(session, spec)
        if dp is None:
            aggregate = strategy.aggregate_stored(row.number, start, stored)
            # A robust rule says what it did to each update, so that members can see it.
            if spec.strategy.robust:
                verdicts = stored_verdicts(strategy, start, aggregate, stored)
        else:
            aggregate, record = _private_aggregate(session, job, row, strategy, dp, start, stored)
            row.privacy = record.to_json()
    return aggregate, verdicts


def _finite(metrics: dict[str, float], job: Job, row: Round) -> dict[str, float]:
    """The round's metrics without non-finite values (a diverged model's loss is NaN): the log
    takes finite JSON only, and a round that cannot be logged could never close."""
    kept = {k: v for k, v in metrics.items() if math.isfinite(v)}
    if len(kept) != len(metrics):
        log.warning(
            "non-finite round metrics dropped",
            extra={"job": job.id, "round": row.number, "dropped": sorted(set(metrics) - set(kept))},
        )
    return kept


def _finite_or_zero(value: Any) -> float:
    """A stored figure as a finite float; one stored before the edge refused `inf` counts 0."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return 0.0
    if not math.isfinite(number):
        log.warning("non-finite stored figure counted as 0", extra={"value": str(value)})
        return 0.0
    return number


def _strategy(settings: Settings, job: Job, spec: JobSpec) -> Strategy:
    """The job's strategy with its server optimiser's state after the last closed round."""
    strategy = make_strategy(spec.strategy)
    if job.server_state:
        strategy.load_state(read_parameters(settings, job.server_state))
    return strategy


def _dp_settings(session: Session, spec: JobSpec) -> mechanism.Settings | None:
    """The job's client-level DP with defaults resolved (δ from the number of members)."""
    dp = spec.privacy.differential_privacy
    if dp is None:
        return None
    clients = max(len(eligible(session, spec)), 1)
    return mechanism.Settings.from_spec(dp, clients, spec.clients_per_round or clients)


def privacy_records(session: Session, job: Job) -> list[dict[str, Any] | None]:
    """The closed rounds' privacy records, in order (None for a round without DP)."""
    return list(
        session.scalars(
            select(Round.privacy)
            .where(Round.job_id == job.id, Round.status == "closed")
            .order_by(Round.number)
        ).all()
    )


def achieved_privacy(session: Session, job: Job) -> dict[str, Any] | None:
    """What the run achieved (client level), or None when any round went without DP."""
    return mechanism.achieved(privacy_records(session, job))


def _clip_norm(records: list[dict[str, Any] | None], dp: mechanism.Settings) -> float:
    """C for the next round: the last round's adaptive result, or the spec's."""
    last = records[-1] if records else None
    return float(last["next_clip_norm"]) if last else dp.clip_norm


def _planned_privacy(
    session: Session, job: Job, spec: JobSpec, sampling_rate: float
) -> dict[str, Any] | None:
    """What an opening round will apply (its sampling rate and C), completed when it closes."""
    dp = _dp_settings(session, spec)
    if dp is None:
        return None
    return {
        "sampling_rate": sampling_rate,
        "clip_norm": _clip_norm(privacy_records(session, job), dp),
        "mode": dp.noise,
    }


def _over_budget(
    session: Session, settings: Settings, job: Job, spec: JobSpec, sampling_rate: float
) -> bool:
    """Ends the job, before the round opens, when completing it would exceed the ε budget."""
    dp = _dp_settings(session, spec)
    if dp is None:
        return False
    steps = mechanism.steps_of(privacy_records(session, job))
    upcoming = mechanism.next_epsilon(steps, sampling_rate, dp)
    if upcoming <= dp.budget:
        return False
    job.finish_reason = (
        f"privacy budget: round {job.rounds_done + 1} would take ε to {upcoming:.3g}, "
        f"over the budget ε = {dp.budget:g}"
    )
    append(
        session,
        "federation.privacy_budget_reached",
        {
            "job": job.id,
            "rounds_done": job.rounds_done,
            "epsilon_next": round(upcoming, 6),
            "budget": dp.budget,
        },
    )
    _finish(session, settings, job)
    return True


def _private_aggregate(
    session: Session,
    job: Job,
    row: Round,
    strategy: Strategy,
    dp: mechanism.Settings,
    start: Parameters,
    stored: list[StoredUpdate],
) -> tuple[Parameters, mechanism.RoundPrivacy]:
    """DP-FedAvg's stage: clipped (or node-clipped), noised, uniformly weighted mean delta;
    then the strategy's server update on it; then ε after this round."""
    records = privacy_records(session, job)
    candidates = row.privacy or {}
    sampling_rate = float(candidates.get("sampling_rate", 1.0))
    mean, record = mechanism.private_mean(
        start,
        (u.load().parameters for u in stored),
        dp,
        clip_norm=float(candidates.get("clip_norm", _clip_norm(records, dp))),
        chosen=len(row.participants),
        sampling_rate=sampling_rate,
        rng=fresh_generator(),
    )
    mechanism.account(mechanism.steps_of(records), record, dp)
    combined = mechanism.apply_mean(start, mean)
    updated = strategy.server_update(start, combined)
    return {k: v.astype(start[k].dtype, copy=False) for k, v in updated.items()}, record


def _evaluate(
    spec: JobSpec, params: Parameters, updates: list[Update], examples: int, number: int
) -> dict[str, float]:
    """The hub evaluates on a public test split when the task has one and the spec asks for
    this round (every `evaluate_every` rounds and the last; 0: never); otherwise the nodes'
    own evaluations, weighted by their examples."""
    task = load_task(spec.task)
    public = getattr(task, "public_test", None)
    due = evaluation_due(spec, number)
    if public is not None and due:
        x, y = public()
        result = task.evaluate(params, TaskData(x, y))
        return {
            "loss": round(result.loss, 6),
            **{k: round(v, 6) for k, v in result.metrics.items()},
        }
    totals: dict[str, float] = {}
    for u in updates:
        for k, v in u.metrics.items():
            totals[k] = totals.get(k, 0.0) + _finite_or_zero(v) * u.examples
    return {k: round(v / max(examples, 1), 6) for k, v in totals.items()}


def evaluation_due(spec: JobSpec, number: int) -> bool:
    """Whether round `number` is evaluated: every `evaluate_every` rounds and the last
    (0: never). In such a round the hub evaluates the aggregate on a public split, and nodes
    whose site allows it evaluate the model they received, on their own test data."""
    return spec.evaluate_every > 0 and (number % spec.evaluate_every == 0 or number >= spec.rounds)


def _finish(session: Session, settings: Settings, job: Job) -> None:
    job.status = "completed"
    job.finished_at = utcnow()
    rounds = session.scalars(
        select(Round).where(Round.job_id == job.id, Round.status == "closed")
    ).all()
    ids = sorted({m for r in rounds for m in r.participants})
    names = [m.slug for m in session.scalars(select(Member).where(Member.id.in_(ids))).all()]
    metrics = rounds[-1].metrics if rounds else {}
    write_file(
        settings,
        f"job-{job.id}/model/model.safetensors",
        (folder(settings) / job.parameters).read_bytes(),
    )
    card = model_card(
        job,
        names,
        metrics,
        achieved_privacy(session, job),
        publication.record_privacy(session, job),
    )
    write_file(settings, f"job-{job.id}/model/README.md", card.encode())
    job.model_path = f"job-{job.id}/model"
    publication.publish(session, settings, job, folder(settings) / job.model_path, card)
    # The final model evaluated by each participant on its own test data (its job page shows
    # the accuracy member by member); only a published model, which nodes can pull.
    campaign = evaluation.open_for_job(session, job, metrics)
    append(
        session,
        "federation.job_completed",
        {
            "job": job.id,
            "rounds": job.rounds_done,
            "model_sha256": job.digest,
            "published_as": job.model_repo,
            # A refused publication is part of the public record, not only of the job page.
            **(
                {"publication_error": job.publication["error"]}
                if job.publication.get("error")
                else {}
            ),
            **({"finish_reason": job.finish_reason} if job.finish_reason else {}),
            **({"campaign": campaign} if campaign is not None else {}),
        },
    )


def work_for(session: Session, settings: Settings, member: Member) -> dict[str, Any] | None:
    """The round this member should train now, if any (advancing jobs on the way)."""
    for job in session.scalars(select(Job).where(Job.status == "running").order_by(Job.id)):
        row = current_round(session, job)
        if _due(session, row):
            advance(session, settings, job)
            row = current_round(session, job)
        if row is None or member.id not in row.participants:
            continue
        done = session.scalars(
            select(Update.id).where(Update.round_id == row.id, Update.member_id == member.id)
        ).first()
        if done:
            continue
        spec = JobSpec.model_validate(job.spec)
        if spec.privacy.secagg is not None:
            # A node joins a SecAgg+ round only at its start (its keys are made for it), and
            # works the whole round in one go: no second offer of the same round.
            current = secure_round.state(session, row, spec)
            if current.closed["keys"] or member.id in current.keys:
                continue
        strategy = make_strategy(spec.strategy)
        config = strategy.configure(row.number, spec.local.model_dump())
        config["seed"] = int(
            np.random.SeedSequence([job.id, row.number, member.id]).generate_state(1)[0]
        )
        dp = spec.privacy.differential_privacy
        if dp is not None and dp.noise == "distributed" and row.privacy:
            # The node clips its own delta and adds its share of the noise (privacy.mechanism).
            clip_norm = float(row.privacy["clip_norm"])
            config["client_dp"] = {
                "clip_norm": clip_norm,
                "noise_std": share_std(dp.z, clip_norm, len(row.participants)),
            }
        if spec.privacy.secagg is not None:
            config["secagg"] = {"attempt": row.attempt}
        if spec.compression is not None:  # the node sends its delta compressed (compression)
            config["compression"] = spec.compression.model_dump(mode="json")
        return {
            "job": job.id,
            "round": row.number,
            "task": spec.task,
            "config": config,
            # The node evaluates the model it receives before training, if its site allows.
            "evaluate": evaluation_due(spec, row.number),
            "reference": job.reference,
            "title": job.title,
            "deadline": row.deadline.isoformat(),
        }
    return None
