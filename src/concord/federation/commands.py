"""`concord simulate`: try settings on many simulated clients before members commit."""

from __future__ import annotations

import json

import numpy as np
import typer
from rich.table import Table

from concord.console import out


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate_command)


def simulate_command(
    task: str = typer.Option("logreg-digits", help="An installed task."),
    clients: int = typer.Option(100, help="Simulated clients."),
    rounds: int = typer.Option(10, help="Rounds."),
    per_round: int = typer.Option(None, help="Clients per round (default: all)."),
    partition: str = typer.Option("iid", help="iid, noniid (two label shards each), dirichlet"),
    alpha: float = typer.Option(0.5, help="Dirichlet concentration."),
    strategy: str = typer.Option("fedavg", help="fedavg, fedavgm, fedprox, fedadam, …"),
    epochs: int = typer.Option(1, help="Local epochs."),
    batch_size: int = typer.Option(10, help="Local batch size (0: full batch)."),
    learning_rate: float = typer.Option(0.1, help="Local learning rate."),
    seed: int = typer.Option(0, help="Seed for partitions, sampling and training."),
    as_json: bool = typer.Option(False, "--json", help="Print the history as JSON."),
) -> None:
    """Simulate a federated job; the cohort of each round trains as one batched computation."""
    from concord.federation import data
    from concord.federation.simulation import simulate
    from concord.federation.strategies import make_strategy
    from concord.federation.tasks.base import load_task
    from concord.federation.tasks.logreg import DigitsLogReg
    from concord.governance.jobspec import StrategySpec

    chosen = load_task(task)
    if not isinstance(chosen, DigitsLogReg):
        raise typer.BadParameter("the simulator batches logistic-regression tasks only so far")
    x, y = chosen.dataset()
    order = np.random.default_rng(seed).permutation(len(y))
    x, y = x[order], y[order]
    cut = int(0.8 * len(y))
    if partition == "noniid":
        parts = data.pathological_non_iid(y[:cut], clients=clients, shards=2 * clients, seed=seed)
    elif partition == "dirichlet":
        parts = data.dirichlet(y[:cut], clients, alpha, seed)
    else:
        parts = data.iid(cut, clients, seed)
    result = simulate(
        chosen,
        x[:cut],
        y[:cut],
        parts,
        make_strategy(StrategySpec(name=strategy)),
        rounds=rounds,
        clients_per_round=per_round,
        test=(x[cut:], y[cut:]),
        seed=seed,
        local={"epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate},
    )
    if as_json:
        out.print_json(json.dumps(result.history))
        return
    table = Table("round", "clients", "accuracy", "loss", "seconds")
    for h in result.history:
        table.add_row(
            str(int(h["round"])),
            str(int(h["clients"])),
            f"{h['accuracy']:.3f}",
            f"{h['loss']:.3f}",
            f"{h['seconds']:.3f}",
        )
    out.print(table)
