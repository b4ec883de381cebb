"""Demo step, after the federated job: "does this model work for us?" — a campaign of the
published model and a baseline (what one member could train alone on its own share) on every
participating member's private test share, answered by the members' running nodes.

The baseline is trained here, at the demo's hub, only because the demo holds every site's
share on one disk; its card says so. A real baseline is any model already in the commons."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from concord.commons import repositories
from concord.commons.chunks import open_store
from concord.federation import data
from concord.federation.evaluation import Matrix, ModelSummary, matrix, open_campaign
from concord.federation.parameters import write_safetensors
from concord.federation.tables import Job
from concord.federation.tasks.base import Task, TaskData
from concord.governance.jobspec import JobSpec
from concord.members.tables import Member
from concord.seeding import World

TITLE = "Federated model vs one member alone, on every member's test share"
THRESHOLD = 0.8  # a member "is served" by a model that reads 80 % of its own digits


def alone_slug(sites: Path, slugs: list[str]) -> str:
    """The member with the smallest training share: the one federation should help most."""
    return min(slugs, key=lambda s: len(data.read_partition(sites / s)[1]))


def baseline_card(task: str, member: Member, examples: int, epochs: int) -> str:
    """The baseline's card: front matter through the YAML library (a name with ": " cannot
    break it), and no privacy claim, because none was applied."""
    front = {
        "license": "apache-2.0",
        "library_name": "concord",
        "tags": ["baseline", task],
        "datasets": [f"{member.slug}/local-data"],  # the one share it saw
    }
    return (
        f"---\n{yaml.safe_dump(front, sort_keys=False, allow_unicode=True)}---\n\n"
        f"# {task}: {member.name} alone\n\n"
        f"A baseline for comparison: the task `{task}` trained by one member, {member.name}, on "
        f"its own {examples} training examples only ({epochs} local epochs). It was not trained "
        "federatedly and no privacy mechanism was applied to it: no privacy is claimed.\n"
    )


def publish_baseline(
    db: Session, world: World, task: Task, spec: JobSpec, member: Member, folder: Path
) -> tuple[str, str]:
    """Trains `task` on `member`'s share alone and publishes it; (repository, revision)."""
    name = f"{spec.task}-{member.slug}-alone"
    existing = repositories.get(db, "model", member.slug, name, missing_ok=True)
    done = repositories.head(db, existing) if existing is not None else None
    if done is not None:
        return f"{member.slug}/{name}", done.sha
    local = task.load_data(folder)
    epochs = spec.rounds * spec.local.epochs
    config = {"epochs": epochs, "batch_size": spec.local.batch_size, "seed": 7}
    trained = task.train(task.init_parameters(7), TaskData(local.x, local.y), config)
    out = world.settings.data_dir / "baseline" / name
    out.mkdir(parents=True, exist_ok=True)
    write_safetensors(out / "model.safetensors", trained.parameters)
    card = baseline_card(spec.task, member, int(local.y.shape[0]), epochs)
    (out / "README.md").write_text(card, encoding="utf-8")
    revision = repositories.publish_model(
        db,
        open_store(world.settings),
        member,
        name,
        {"model.safetensors": out / "model.safetensors", "README.md": out / "README.md"},
        licence="Apache-2.0",
        card_text=card,
        provenance={"trained_by": member.slug, "federated": False, "task": spec.task},
        message=f"Baseline: {spec.task} trained by {member.slug} alone",
    )
    return f"{member.slug}/{name}", revision.sha


def open_comparison(
    world: World, job_id: int, task: Task, sites: Path, slugs: list[str]
) -> int | None:
    """Opens the demo's campaign (once); its id, or None when the job published nothing."""
    with world.sessions() as db:
        job = db.get(Job, job_id)
        revision = (job.publication or {}).get("revision") if job is not None else None
        if job is None or not job.model_repo or not revision:
            return None
        spec = JobSpec.model_validate(job.spec)
        members = {m.slug: m for m in db.scalars(select(Member).where(Member.slug.in_(slugs)))}
        alone = members[alone_slug(sites, slugs)]
        baseline = publish_baseline(db, world, task, spec, alone, sites / alone.slug)
        campaign_id = open_campaign(
            db,
            members[job.model_repo.split("/")[0]],
            title=TITLE,
            task=spec.task,
            models=[(job.model_repo, revision), baseline],
            metric="accuracy",
            threshold=THRESHOLD,
            members=[members[s].id for s in slugs],
        )
        db.commit()
        return campaign_id


def until_answered(
    world: World, campaigns: list[int], alive: Callable[[], bool], limit: float = 300
) -> None:
    """Waits while the nodes run until no member is left to answer any of `campaigns`."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and alive():
        with world.sessions() as db:
            if all(not s.pending for c in campaigns for s in matrix(db, c).models):
                return
        time.sleep(0.5)


def table(result: Matrix) -> list[str]:
    """The campaign as the demo prints it: member by member, then by region."""
    lines = [f"Evaluation campaign {result.campaign_id}: {result.title} ({result.metric})"]
    for summary in result.models:
        lines += _model_lines(summary, result.threshold)
    return lines


def _model_lines(summary: ModelSummary, threshold: float | None) -> list[str]:
    def pct(value: float | None) -> str:
        return "—" if value is None else f"{100 * value:.1f} %"

    metric = summary.metric
    lines = [
        f"  {summary.repo}: mean {pct(summary.mean)}, worst {pct(summary.worst)} "
        f"({summary.worst_member or '—'}), spread {pct(summary.spread)}"
        + (f", {pct(summary.pass_share)} of members ≥ {pct(threshold)}" if threshold else "")
    ]
    for cell in sorted(summary.cells, key=lambda c: c.metrics.get(metric, 0.0)):
        lines.append(
            f"    {cell.member_name:<14} {cell.region:<9} {cell.income_group:<13} "
            f"{pct(cell.metrics.get(metric)):>8}  ({cell.num_examples} examples)"
        )
    regions = ", ".join(f"{r} {pct(v)}" for r, v in sorted(summary.by_region.items()))
    lines.append(f"    by region: {regions}")
    if summary.declined:
        lines.append(f"    declined: {', '.join(summary.declined)}")
    return lines


def describe(world: World, campaign_id: int) -> dict[str, Any]:
    """The figures the demo keeps in its facts (and its test checks)."""
    with world.sessions() as db:
        result = matrix(db, campaign_id)
    world.notes.extend(table(result))
    return {
        "campaign": campaign_id,
        "models": {
            s.repo: {c.member: c.metrics.get(s.metric) for c in s.cells} for s in result.models
        },
    }
