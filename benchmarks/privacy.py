"""Client-level differential privacy on MNIST: what ε = 1, 3, 8 cost in accuracy.

    python benchmarks/privacy.py            # 30 rounds per setting (about 10 min, 2 cores)
    python benchmarks/privacy.py --quick    # 3 rounds, ε = 8 and no DP (43 s wall, load 17)

Setting: the 2NN of McMahan et al. 2017 on MNIST, 60,000 digits dealt IID to K = 100 clients,
10 chosen per round (sampling rate q = 0.1), FedAvg with E = 1, B = 10, η = 0.1 — the
fedavg_mnist benchmark's 2NN cell — then DP-FedAvg (McMahan et al. 2018) as the hub runs it
(`concord.federation.privacy`): each delta clipped to C, Gaussian noise z·C on the sum, divided
by the 10 chosen. For each target ε the noise multiplier z is the smallest that keeps ε after
all the rounds within the target (RDP accountant, δ = 1/K^1.1), found by bisection.

Figures: rounds until the test accuracy first reaches 97 % (null: not reached), final and best
accuracy, z, and the ε actually accounted. The peer is Flower's
`DifferentialPrivacyServerSideFixedClipping` on the same model, partition, z and C — run only
when `flwr` is installed in this environment; otherwise the column is skipped and the reason
printed (nothing is faked). Expect DP with 100 clients to cost much accuracy: the noise on the
mean has standard deviation z·C/10 in each of the 2NN's 199,210 coordinates, while the signal
is at most C/10 in norm; DP-FedAvg's results rest on thousands of clients per round.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import time
from typing import Any

import torch

from concord.federation import data
from concord.federation.privacy import accountant, mechanism
from concord.federation.simulation import simulate
from concord.federation.strategies.fedavg import FedAvg
from concord.federation.tasks.mnist import Mnist2NN

CLIENTS, PER_ROUND, TARGET = 100, 10, 0.97
LOCAL = {"epochs": 1, "batch_size": 10, "learning_rate": 0.1}


def noise_for(epsilon: float, rounds: int, q: float, delta: float) -> float:
    """The smallest z (to 0.1 %) whose ε after `rounds` rounds is within `epsilon`."""
    low, high = 0.05, 200.0
    while high / low > 1.001:
        mid = (low * high) ** 0.5
        if accountant.epsilon([(q, mid)] * rounds, delta) <= epsilon:
            high = mid
        else:
            low = mid
    return high


def run(task: Mnist2NN, split: Any, rounds: int, privacy: mechanism.Settings | None) -> dict:
    x, y, x_test, y_test, parts = split
    started = time.perf_counter()
    result = simulate(
        task,
        x,
        y,
        parts,
        FedAvg(),
        rounds=rounds,
        local=LOCAL,
        clients_per_round=PER_ROUND,
        test=(x_test, y_test),
        seed=0,
        privacy=privacy,
    )
    wall = time.perf_counter() - started
    accuracies = [h["accuracy"] for h in result.history]
    reached = next((i + 1 for i, a in enumerate(accuracies) if a >= TARGET), None)
    return {
        "rounds_to_97": reached,
        "final_accuracy": round(accuracies[-1], 4),
        "best_accuracy": round(max(accuracies), 4),
        "rounds_run": len(accuracies),
        "epsilon": round(result.privacy[-1].epsilon, 4) if result.privacy else None,
        "stopped": result.stopped,
        "wall_s": round(wall, 1),
    }


def flower_reason() -> str:
    if importlib.util.find_spec("flwr") is None:
        return "flwr is not installed in this environment (not a project dependency)"
    return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds, ε = 8 and no DP")
    parser.add_argument("--rounds", type=int, help="rounds per setting (default 30; quick 3)")
    parser.add_argument("--clip", type=float, default=1.0, help="clipping norm C")
    parser.add_argument("--threads", type=int, help="torch threads (default: every core)")
    args = parser.parse_args()
    # A quick run takes one thread: beside other work, OpenMP's spinning threads on an
    # oversubscribed machine cost 2–3× the wall time (see benchmarks/robustness.py).
    torch.set_num_threads(args.threads or (1 if args.quick else os.cpu_count() or 1))
    rounds = args.rounds or (3 if args.quick else 30)
    targets = [8.0] if args.quick else [8.0, 3.0, 1.0]
    task = Mnist2NN()
    x, y = task.dataset()
    x_test, y_test = task.public_test()
    split = (x, y, x_test, y_test, data.iid(len(y), CLIENTS, seed=0))
    q, delta = PER_ROUND / CLIENTS, accountant.default_delta(CLIENTS)
    cells: dict[str, dict[str, Any]] = {"no_dp": run(task, split, rounds, None)}
    print(f"no DP: {cells['no_dp']}", flush=True)
    for target in targets:
        z = noise_for(target, rounds, q, delta)
        settings = mechanism.Settings(
            budget=target, delta=delta, clip_norm=args.clip, noise_multiplier=z
        )
        cell = run(task, split, rounds, settings)
        cell.update(
            noise_multiplier=round(z, 4),
            clip_norm=args.clip,
            # What DP keeps of the non-private accuracy, on the same rounds and partition.
            accuracy_ratio=round(cell["final_accuracy"] / cells["no_dp"]["final_accuracy"], 4),
        )
        cells[f"epsilon_{target:g}"] = cell
        print(f"ε ≤ {target:g} (z = {z:.3f}): {cell}", flush=True)
    reason = flower_reason()
    if reason:
        print(f"Flower: skipped — {reason}", flush=True)
    print(
        json.dumps(
            {
                "benchmark": "privacy",
                "model": "mnist-2nn",
                "clients": CLIENTS,
                "clients_per_round": PER_ROUND,
                "rounds": rounds,
                "delta": round(delta, 8),
                "accountant": "rdp",
                "cells": cells,
                **{
                    f"{k}_accuracy_ratio": c["accuracy_ratio"]
                    for k, c in cells.items()
                    if k != "no_dp"
                },
                "flower": None,
                "flower_skipped": reason,
                "threads": torch.get_num_threads(),
                "machine": f"{platform.machine()} {os.cpu_count()} cpus",
                "python": sys.version.split()[0],
            }
        )
    )


if __name__ == "__main__":
    main()
