"""Demo step: the adopted project's job, trained by real `concord node` processes — one per
participating member, each with its own partition on disk — against this hub, served for the
occasion on 127.0.0.1 by whoever runs the steps (`World.hub`: the demo's story)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any

from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.orm import Session

from concord.errors import N_
from concord.federation import comparison, data
from concord.federation.evaluation import campaign_for_job
from concord.federation.jobs import achieved_privacy
from concord.federation.tables import Job
from concord.federation.tasks.base import Simulable, load_task
from concord.governance.jobspec import JobSpec
from concord.members.tables import Member
from concord.seeding import World

STEP = N_("A federated job across member nodes")


def _training_data(task: Any) -> tuple[NDArray[Any], NDArray[Any]] | None:
    """What the demo hands out to the members' sites: the task's training pool, if it has one
    (`Simulable`); its public test set stays at the hub."""
    return task.training_pool() if isinstance(task, Simulable) else None


def _until_done(
    world: World, job_id: int, nodes: list[subprocess.Popen[bytes]], then: Callable[[], None]
) -> None:
    """Waits for the job to finish (or every node to stop), runs `then` while the nodes still
    answer (the evaluation campaigns), then stops the nodes."""
    deadline = time.monotonic() + 900
    try:
        while time.monotonic() < deadline and any(n.poll() is None for n in nodes):
            with world.sessions() as db:
                job = db.get(Job, job_id)
                if job is None or job.status != "running":
                    break
            time.sleep(0.5)
        then()
    finally:
        for node in nodes:
            if node.poll() is None:
                node.terminate()
        for node in nodes:
            try:
                node.wait(timeout=20)
            except subprocess.TimeoutExpired:
                node.kill()


def seed(world: World) -> None:
    with world.sessions() as db:
        job = db.scalars(select(Job).where(Job.status == "running").order_by(Job.id)).first()
        if job is None:
            return  # no adopted project waiting, or its job has run already
        spec = JobSpec.model_validate(job.spec)
        members = {m.slug: m for m in db.scalars(select(Member)).all()}
        slugs = [s for s in spec.participants.members if s in members]
        job_id = job.id
    task = load_task(spec.task)
    pool = _training_data(task)
    if pool is None or world.hub is None:
        world.notes.append(f"Federated job {job_id} waits for nodes: no data or hub to run them.")
        return
    tokens = world.facts.get("tokens", {})
    x, y = pool
    # Dirichlet(1): each member holds its own mix of digits, as real sites would; its test
    # share (cut from the task's public test set the same way) stays at the site too.
    parts = data.dirichlet(y, len(slugs), alpha=1.0, seed=7)
    x_test, y_test = task.public_test() if isinstance(task, Simulable) else (None, None)
    tests = data.dirichlet(y_test, len(slugs), alpha=1.0, seed=7) if y_test is not None else []
    sites = world.settings.data_dir / "nodes"
    for i, (slug, part) in enumerate(zip(slugs, parts, strict=True)):
        held = tests[i] if tests else None
        data.write_partition(
            sites / slug,
            x[part],
            y[part],
            None if held is None or x_test is None else x_test[held],
            None if held is None or y_test is None else y_test[held],
        )
        # Each site evaluates commons models with the task it trains (evaluation campaigns).
        (sites / slug / "policy.toml").write_text(f'evaluate = ["{spec.task}"]\n')
    hub = world.hub()
    logs = ExitStack()
    try:
        # Our own interpreter and arguments we build: no untrusted input.
        nodes = [
            subprocess.Popen(  # noqa: S603
                [
                    sys.executable,
                    "-c",
                    "from concord.cli import main; main()",
                    "node",
                    "--member",
                    slug,
                    "--data",
                    str(sites / slug),
                    "--hub",
                    hub,
                    "--token",
                    tokens[slug],
                    "--key-file",
                    str(world.keys_dir / f"{slug}.pem"),
                    "--policy",
                    str(sites / slug / "policy.toml"),
                    # Nodes stay while the job runs (the hub tells them it is waiting on
                    # them); the loop below stops them; this is only a backstop.
                    "--idle-exit",
                    "120",
                ],
                # Five nodes share this machine: one thread each, not five fighting for two
                # cores; each node's log stays beside its data.
                env={**os.environ, "OMP_NUM_THREADS": "1"},
                stdout=logs.enter_context((sites / slug / "node.log").open("ab")),
                stderr=subprocess.STDOUT,
            )
            for slug in slugs
        ]
        _until_done(
            world,
            job_id,
            nodes,
            partial(_evaluate, world, job_id, task, sites, slugs, nodes),
        )
    finally:
        logs.close()
    with world.sessions() as db:
        job = db.get(Job, job_id)
        if job is not None:
            world.notes.append(
                f"Federated job “{job.title}”: {job.rounds_done} rounds by {len(slugs)} member "
                f"nodes, {job.status}{_privacy_note(db, job)} — see /jobs/{job.id}."
            )


def _evaluate(
    world: World,
    job_id: int,
    task: Any,
    sites: Path,
    slugs: list[str],
    nodes: list[subprocess.Popen[bytes]],
) -> None:
    """The final model's campaign the hub opened, and the demo's comparison with a baseline,
    answered by the nodes before they stop; the comparison's table goes into the notes."""
    with world.sessions() as db:
        final = campaign_for_job(db, job_id)
    compared = comparison.open_comparison(world, job_id, task, sites, slugs)
    opened = [c for c in (final, compared) if c is not None]
    comparison.until_answered(world, opened, lambda: any(n.poll() is None for n in nodes))
    if compared is not None:
        world.facts["comparison"] = comparison.describe(world, compared)


def _privacy_note(db: Session, job: Job) -> str:
    """What the run applied, as the card states it: the accountant's ε, not the spec's."""
    spec = JobSpec.model_validate(job.spec)
    notes = []
    if spec.privacy.secagg is not None:
        notes.append("secure aggregation (SecAgg+): the hub saw only each round's sum")
    achieved = achieved_privacy(db, job)
    if achieved is not None:
        notes.append(
            f"client-level DP achieved ε = {achieved['epsilon']:.3g} "
            f"(δ = {achieved['delta']:.3g}, {achieved['accountant'].upper()} accountant)"
        )
    elif spec.privacy.differential_privacy is not None:
        notes.append("DP was requested but not applied to every round: none is claimed")
    return "".join(f"; {n}" for n in notes)
