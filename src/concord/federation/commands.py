"""`concord simulate`: try settings on many simulated clients before members commit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from numpy.typing import NDArray
from rich.table import Table

from concord.console import out

job_app = typer.Typer(help="Federated jobs at this hub.", no_args_is_help=True)
# `concord node` runs the node; `concord node approve` releases held evaluation results.
node_app = typer.Typer()


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate_command)
    node_app.callback(invoke_without_command=True)(node_command)
    node_app.command("approve")(approve_command)
    app.add_typer(node_app, name="node")
    app.add_typer(job_app, name="job")


def node_command(
    ctx: typer.Context,
    # Required unless a subcommand runs (checked below): `concord node approve` has its own.
    member: str = typer.Option(None, help="Your member's handle."),
    data: Path = typer.Option(None, help="Folder with this site's data (train.npz, test.npz)."),
    hub: str = typer.Option(None, help="Hub URL (default: CONCORD_HUB)."),
    token: str = typer.Option(None, help="Your API token (default: CONCORD_TOKEN)."),
    key_file: Path = typer.Option(None, help="Your member's private key."),
    policy: Path = typer.Option(
        None, help="Site policy (TOML): tasks and projects accepted, tasks evaluated."
    ),
    state: Path = typer.Option(
        None, help="The node's own folder: model cache, held results (default: DATA/.concord-node)."
    ),
    once: bool = typer.Option(False, help="Train one round, then exit."),
    max_rounds: int = typer.Option(None, help="Exit after this many rounds."),
    idle_exit: float = typer.Option(
        None,
        help="Exit after this many seconds with no work and no running job it takes part in.",
    ),
    wait: float = typer.Option(
        25.0, help="Seconds each request for work waits at the hub for a round (long polling)."
    ),
    energy: bool = typer.Option(True, help="Measure energy with codecarbon's offline tracker."),
    attack: str = typer.Option(
        None,
        hidden=True,  # for tests only: send crafted updates (sign-flip, scaling, noise)
        help="FOR TESTS ONLY: craft this node's updates with an attack.",
    ),
) -> None:
    """Run a member's node: pull work, train on local data, push signed updates; evaluate
    commons models on local test data for campaigns the site policy accepts."""
    import os

    if ctx.invoked_subcommand is not None:
        return
    if member is None:
        raise typer.BadParameter("Missing option '--member'.", param_hint="--member")
    if data is None:
        raise typer.BadParameter("Missing option '--data'.", param_hint="--data")

    from concord.federation.node import SitePolicy, run_node
    from concord.logs import configure
    from concord.members.keys import default_key_path

    configure()  # a node runs unattended: its rounds, retries and refusals go to stderr

    report = run_node(
        hub or os.environ.get("CONCORD_HUB") or "http://127.0.0.1:8000",
        member,
        data,
        token or os.environ.get("CONCORD_TOKEN") or "",
        key_file or default_key_path(member),
        policy=SitePolicy.read(policy),
        once=once,
        max_rounds=max_rounds,
        energy=energy,
        idle_exit=idle_exit,
        wait=wait,
        attack=attack,
        state=state,
    )
    out.print(
        f"[green]node {member}[/]: trained {len(report.trained)} rounds, declined "
        f"{len(report.declined)}; campaigns evaluated {len(report.evaluated)}, held "
        f"{len(report.evaluations_held)}, declined {len(report.evaluations_declined)}; "
        f"pulled {report.downloaded_bytes} bytes of models"
    )


def approve_command(
    member: str = typer.Option(..., help="Your member's handle."),
    data: Path = typer.Option(None, help="The site's data folder (its state folder is inside)."),
    state: Path = typer.Option(None, help="The node's own folder (default: DATA/.concord-node)."),
    campaign: int = typer.Option(None, help="Release this campaign's results only."),
    hub: str = typer.Option(None, help="Hub URL (default: CONCORD_HUB)."),
    token: str = typer.Option(None, help="Your API token (default: CONCORD_TOKEN)."),
    key_file: Path = typer.Option(None, help="Your member's private key."),
) -> None:
    """Release evaluation results the node holds (policy `approve_evaluations = true`):
    shows each, then sends it signed to the hub."""
    import os

    from concord.federation.node import FINAL_REFUSALS, approve, default_state
    from concord.members.keys import default_key_path

    if state is None and data is None:
        raise typer.BadParameter("give --state or --data", param_hint="--state")
    folder = state if state is not None else default_state(data)

    def show(payload: dict[str, Any]) -> None:
        table = Table("model", "revision", "examples", "metrics")
        for r in payload["results"]:
            table.add_row(
                r["repo"],
                r["revision"][:12],
                str(r["num_examples"]),
                ", ".join(f"{k} {v:.4f}" for k, v in sorted(r["metrics"].items())),
            )
        out.print(f"campaign {payload['campaign']} ({payload['evaluation_set']}):")
        out.print(table)

    sent, refused = approve(
        hub or os.environ.get("CONCORD_HUB") or "http://127.0.0.1:8000",
        member,
        token or os.environ.get("CONCORD_TOKEN") or "",
        key_file or default_key_path(member),
        folder,
        campaign,
        show,
    )
    out.print(f"[green]released[/] results of {len(sent)} campaign(s): {sent}")
    for number, error in sorted(refused.items()):
        where = "moved to refused/" if error.code in FINAL_REFUSALS else "kept, to send again"
        out.print(f"[red]not taken[/] campaign {number}: {error} ({error.code}); {where}")
    if refused:
        raise typer.Exit(1)


@job_app.command("create")
def job_create(
    spec: Path = typer.Argument(..., help="A job spec (JSON), as a project proposal carries."),
    title: str = typer.Option(..., help="What the job trains."),
) -> None:
    """Create a job for the secretariat's experiments (adopted projects create their own)."""
    from concord.config import get_settings
    from concord.console import local_sessions
    from concord.federation import jobs
    from concord.governance.jobspec import JobSpec

    settings = get_settings()
    with local_sessions(settings)() as db:
        job = jobs.create_job(
            db, settings, JobSpec.model_validate_json(spec.read_text()), title=title
        )
        db.commit()
        out.print(f"[green]created[/] job {job.id}")


@job_app.command("list")
def job_list() -> None:
    """Jobs and their progress."""
    from sqlalchemy import select

    from concord.console import local_sessions
    from concord.federation.tables import Job

    with local_sessions()() as db:
        table = Table("job", "title", "task", "status", "rounds")
        for j in db.scalars(select(Job).order_by(Job.id)).all():
            table.add_row(
                str(j.id),
                j.title,
                str(j.spec.get("task")),
                j.status,
                f"{j.rounds_done}/{j.spec.get('rounds')}",
            )
        out.print(table)


@job_app.command("advance")
def job_advance(job_id: int = typer.Argument(...)) -> None:
    """Move a job on (close a due round, open the next): what nodes' requests also do."""
    from concord.config import get_settings
    from concord.console import local_sessions
    from concord.federation import jobs

    settings = get_settings()
    with local_sessions(settings)() as db:
        job = jobs.get_job(db, job_id)
        jobs.advance(db, settings, job)
        db.commit()
        out.print(f"job {job.id}: {job.status}, {job.rounds_done} rounds done")


def _privacy_settings(spec_file: Path | None, clients: int, per_round: int, options: Any) -> Any:
    """The DP to simulate: from the spec file's privacy if given, else the --dp options."""
    import yaml

    from concord.federation.privacy.mechanism import Settings
    from concord.governance.jobspec import DifferentialPrivacy

    dp = options
    if spec_file is not None:
        body = yaml.safe_load(spec_file.read_text())
        dp = body.get("privacy", {}).get("differential_privacy")
        dp = DifferentialPrivacy.model_validate(dp) if dp else None
    return Settings.from_spec(dp, clients, per_round) if dp is not None else None


def _secure_settings(
    spec_file: Path | None, on: bool, shares: int, threshold: int, clip_range: float
) -> Any:
    """SecAgg+ to simulate: the spec file's if it asks for it, else the --secagg options."""
    import yaml

    from concord.governance.jobspec import Privacy, SecureAggregation

    if spec_file is not None:
        body = yaml.safe_load(spec_file.read_text())
        found = Privacy.model_validate(body.get("privacy", {})).secagg
        if found is not None:
            return found
    if not on:
        return None
    return SecureAggregation(num_shares=shares, threshold=threshold, clip_range=clip_range)


def simulate_command(
    task: str = typer.Option("logreg-digits", help="An installed task."),
    clients: int = typer.Option(100, help="Simulated clients."),
    rounds: int = typer.Option(10, help="Rounds."),
    per_round: int = typer.Option(None, help="Clients per round (default: all)."),
    partition: str = typer.Option("iid", help="iid, noniid (two label shards each), dirichlet."),
    alpha: float = typer.Option(0.5, help="Dirichlet concentration."),
    strategy: str = typer.Option("fedavg", help="fedavg, fedavgm, fedprox, fedadam, …"),
    epochs: int = typer.Option(1, help="Local epochs."),
    batch_size: int = typer.Option(10, help="Local batch size (0: full batch)."),
    learning_rate: float = typer.Option(0.1, help="Local learning rate."),
    seed: int = typer.Option(0, help="Seed for partitions, sampling and training."),
    attack: str = typer.Option(
        None, help="Malicious members send crafted updates: sign-flip, scaling, noise, …"
    ),
    malicious: float = typer.Option(0.2, help="Fraction of malicious clients under --attack."),
    bucketing: int = typer.Option(None, help="Robust strategies: bucket size (≥ 2)."),
    as_json: bool = typer.Option(False, "--json", help="Print the history as JSON."),
    evaluate_every: int = typer.Option(
        1, help="Evaluate every N rounds (and after the last); timed apart from training."
    ),
    backend: str = typer.Option("local", help="local, or ray to spread cohorts over processes."),
    workers: int = typer.Option(None, help="Ray worker processes on this machine (default: CPUs)."),
    address: str = typer.Option(None, help="Address of a running Ray cluster to use instead."),
    dp_noise: float = typer.Option(None, help="Client-level DP: noise multiplier z."),
    dp_clip: float = typer.Option(1.0, help="Client-level DP: clipping norm C (initial C)."),
    dp_adaptive: bool = typer.Option(False, help="Client-level DP: adaptive clipping."),
    dp_quantile: float = typer.Option(0.5, help="Adaptive clipping: target quantile γ."),
    dp_clip_lr: float = typer.Option(0.2, help="Adaptive clipping: learning rate η_C."),
    dp_distributed: bool = typer.Option(False, help="Each client adds its share of noise."),
    dp_epsilon: float = typer.Option(100.0, help="Client-level DP: ε budget (stops the run)."),
    dp_delta: float = typer.Option(None, help="Client-level DP: δ (default 1/clients^1.1)."),
    dp_accountant: str = typer.Option("rdp", help="rdp or pld."),
    spec_file: Path = typer.Option(
        None, "--spec", help="A job spec (JSON or YAML) whose privacy settings to simulate."
    ),
    secure: bool = typer.Option(
        False, "--secagg", help="Secure aggregation (SecAgg+): clients mask, the server unmasks."
    ),
    secagg_shares: int = typer.Option(0, help="SecAgg+: neighbours per client (0: all)."),
    secagg_threshold: int = typer.Option(0, help="SecAgg+: threshold t (0: a majority)."),
    secagg_range: float = typer.Option(1.0, help="SecAgg+: each delta coordinate clipped to ±r."),
    compression: str = typer.Option(
        None, help="Count bytes per client and round: none, q8 or topk (updates compressed)."
    ),
    fraction: float = typer.Option(None, help="topk: share of each tensor's entries sent."),
) -> None:
    """Simulate a federated job; the cohort of each round trains as one batched computation."""
    from concord.federation import data
    from concord.federation.attacks import Attack, choose_malicious
    from concord.federation.simulation import Wire, simulate
    from concord.federation.strategies import make_strategy
    from concord.federation.tasks.base import load_task
    from concord.governance.jobspec import Compression, DifferentialPrivacy, StrategySpec

    wire = None
    if compression is not None:  # refused like a spec's (pydantic's message, exit code 2)
        try:
            squeeze = (
                None
                if compression == "none"
                else Compression.model_validate({"kind": compression, "fraction": fraction})
            )
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--compression/--fraction") from exc
        wire = Wire(squeeze)
    if partition not in data.PARTITIONS:  # refused before the data set is loaded
        raise data.UnknownPartition(partition=partition, known=", ".join(data.PARTITIONS))
    chosen = load_task(task)
    x, y, x_test, y_test = _simulation_data(chosen)
    # Each client's test share is cut from the public test set the way its training share is.
    parts = data.partition(partition, y, clients, alpha=alpha, seed=seed)
    test_parts = data.partition(partition, y_test, clients, alpha=alpha, seed=seed)
    result = simulate(
        chosen,
        x,
        y,
        parts,
        make_strategy(StrategySpec(name=strategy, bucketing=bucketing)),
        rounds=rounds,
        clients_per_round=per_round,
        test=(x_test, y_test),
        test_partitions=test_parts,
        evaluate_every=evaluate_every,
        seed=seed,
        local={"epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate},
        backend=backend,
        workers=workers,
        address=address,
        attack=Attack(attack, choose_malicious(clients, malicious, seed), seed=seed)
        if attack
        else None,
        secure=_secure_settings(spec_file, secure, secagg_shares, secagg_threshold, secagg_range),
        wire=wire,
        privacy=_privacy_settings(
            spec_file,
            clients,
            per_round or clients,
            DifferentialPrivacy(
                epsilon=dp_epsilon,
                delta=dp_delta,
                clip_norm=dp_clip,
                noise_multiplier=dp_noise,
                noise="distributed" if dp_distributed else "central",
                adaptive=dp_adaptive,
                target_quantile=dp_quantile,
                clip_learning_rate=dp_clip_lr,
                accountant="pld" if dp_accountant == "pld" else "rdp",
            )
            if dp_noise is not None
            else None,
        ),
    )
    if as_json:
        out.print_json(json.dumps(result.history))
        return
    _print_history(result.history, wire is not None)
    if result.privacy:
        last = result.privacy[-1]
        out.print(
            f"client-level DP: ε = {last.epsilon:.3g}, δ = {last.delta:.3g} after "
            f"{len(result.privacy)} rounds (z = {last.noise_multiplier:g}, final C = "
            f"{last.next_clip_norm:.3g}, {last.accountant.upper()})"
        )
    if result.stopped:
        out.print(f"stopped: {result.stopped}")


def _simulation_data(task: Any) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any], NDArray[Any]]:
    """The task's training pool and public test set, through the `Simulable` protocol."""
    from concord.federation.simulation import NotSimulable
    from concord.federation.tasks.base import Simulable, installed

    if not isinstance(task, Simulable):
        able = [name for name, ep in installed().items() if isinstance(ep.load()(), Simulable)]
        raise NotSimulable(task=task.name, tasks=", ".join(sorted(able)) or "—")
    x, y = task.training_pool()
    x_test, y_test = task.public_test()
    return x, y, x_test, y_test


def _cell(h: dict[str, float], key: str, form: str = ".3f") -> str:
    return format(h[key], form) if key in h else "—"


def _print_history(history: list[dict[str, float]], wire: bool) -> None:
    """One row per round: the test metrics where evaluated, the clients' fairness (mean over
    clients, mean of the worst 10 %, worst client, spread), training and evaluation time."""
    columns = ["round", "clients", "accuracy", "loss", "clients' mean", "worst 10 %", "worst"]
    columns += ["spread", "ε", "train s", "eval s"]
    table = Table(*columns, *(["bytes up", "bytes down"] if wire else []))
    for h in history:
        table.add_row(
            str(int(h["round"])),
            str(int(h["clients"])),
            _cell(h, "accuracy"),
            _cell(h, "loss"),
            _cell(h, "accuracy_mean"),
            _cell(h, "accuracy_worst10"),
            _cell(h, "accuracy_worst"),
            _cell(h, "accuracy_spread"),
            _cell(h, "epsilon", ".3g"),
            _cell(h, "seconds"),
            _cell(h, "evaluation_seconds"),
            *(
                [_cell(h, "update_bytes", ",.0f"), _cell(h, "download_bytes", ",.0f")]
                if wire
                else []
            ),
        )
    out.print(table)
