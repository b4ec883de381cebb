"""Thin links: bytes per node per round, and rounds to 97 % test accuracy (MNIST 2NN), with
plain float32 updates (the baseline: what every node sent before) and with update compression
(8-bit quantisation; top-k with error feedback), all with model downloads as differences.

    python benchmarks/compression.py           # to 97 % (FedAvg paper's 2NN, E = 1, B = 10)
    python benchmarks/compression.py --quick   # to 90 %, 20 rounds at most: under a minute

Setting, as in `benchmarks/fedavg_mnist.py` (McMahan et al. 2017, Table 2): MNIST's 60,000
training digits dealt IID to K = 100 clients, C = 0.1 (10 clients a round), E = 1, B = 10,
η = 0.1, FedAvg, seed 0, the whole test set after every round. The same seed gives every
variant the same client sampling and local shuffles, so the rounds differ only by what the
compression lost or delayed.

Bytes are those `concord node` and the hub move (federation/simulation.py `Wire`): up, the
safetensors message of each update (compressed or whole); down, the round's model as the
lossless XOR-and-zlib difference from the last model that client held (whole the first
time, or when the difference is larger). `--quick` runs with 5 clients a round and stops at
90 %. `download_bytes_from_previous_round` is what a node that trained the round before (every
member, in a cross-silo job where all train every round) fetches from round 2 on. The last
line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from typing import Any

import torch

from concord.federation import data
from concord.federation.simulation import Wire, simulate
from concord.federation.strategies.fedavg import FedAvg
from concord.federation.tasks.mnist import Mnist2NN
from concord.governance.jobspec import Compression

CLIENTS = 100
VARIANTS: dict[str, Compression | None] = {
    "none": None,
    "q8": Compression(kind="q8"),
    "topk": Compression(kind="topk", fraction=0.1),
}


def run(
    name: str, squeeze: Compression | None, target: float, cap: int, per_round: int
) -> dict[str, Any]:
    task = Mnist2NN()
    x, y = task.dataset()
    test = task.public_test()
    parts = data.iid(len(y), CLIENTS, seed=0)
    wire = Wire(squeeze)
    started = time.perf_counter()
    result = simulate(
        task,
        x,
        y,
        parts,
        FedAvg(),
        rounds=cap,
        local={"epochs": 1, "batch_size": 10, "learning_rate": 0.1},
        clients_per_round=per_round,
        test=test,
        seed=0,
        target_accuracy=target,
        wire=wire,
    )
    wall = time.perf_counter() - started
    history = result.history
    accuracy = [h["accuracy"] for h in history]
    up = sum(h["update_bytes"] for h in history) / len(history)
    down = sum(h["download_bytes"] for h in history) / len(history)
    # From round 2 on, a node that trained the round before (every member, in a cross-silo
    # job where all train every round) fetches the difference from that round's model.
    later = history[1:] or history
    previous = sum(h["download_bytes_from_previous"] for h in later) / len(later)
    reached = accuracy[-1] >= target
    return {
        "compression": name if squeeze is None else squeeze.model_dump(exclude_none=True),
        "rounds": len(history) if reached else None,
        "rounds_run": len(history),
        "best_accuracy": round(max(accuracy), 4),
        "update_bytes_per_node_round": round(up),
        "download_bytes_per_node_round": round(down),
        "bytes_per_node_round": round(up + down),
        "download_bytes_from_previous_round": round(previous),
        "model_bytes": round(history[0]["download_bytes"]),
        "wall_s": round(wall, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="to 90 %%, under a minute")
    parser.add_argument("--fraction", type=float, default=0.1, help="top-k's fraction")
    args = parser.parse_args()
    # One thread for --quick: on a shared machine, PyTorch's threads spinning against other
    # work cost more than they bring to batches this small.
    torch.set_num_threads(1 if args.quick else (os.cpu_count() or 1))
    target, cap, per_round = (0.9, 20, 5) if args.quick else (0.97, 300, 10)
    VARIANTS["topk"] = Compression(kind="topk", fraction=args.fraction)
    results = {}
    print(f"{'variant':8} {'rounds':>7} {'up B/node/round':>16} {'down B/node/round':>18}")
    for name, squeeze in VARIANTS.items():
        r = run(name, squeeze, target, cap, per_round)
        results[name] = r
        shown = r["rounds"] if r["rounds"] is not None else f">{r['rounds_run']}"
        print(
            f"{name:8} {shown!s:>7} {r['update_bytes_per_node_round']:>16,} "
            f"{r['download_bytes_per_node_round']:>18,}",
            flush=True,
        )
    base = results["none"]
    line: dict[str, Any] = {
        "benchmark": "compression",
        "task": "mnist-2nn",
        "quick": args.quick,
        "target_accuracy": target,
        "clients": CLIENTS,
        "clients_per_round": per_round,
        "machine": platform.machine(),
        **{f"{k}": v for k, v in results.items()},
    }
    for name in ("q8", "topk"):
        r = results[name]
        line[f"{name}_update_bytes_ratio"] = round(
            base["update_bytes_per_node_round"] / r["update_bytes_per_node_round"], 2
        )
        line[f"{name}_download_from_previous_ratio"] = round(
            base["model_bytes"] / max(r["download_bytes_from_previous_round"], 1), 2
        )
        line[f"{name}_bytes_ratio"] = round(
            base["bytes_per_node_round"] / r["bytes_per_node_round"], 2
        )
        if r["rounds"] and base["rounds"]:
            line[f"{name}_rounds_ratio"] = round(r["rounds"] / base["rounds"], 2)
            line[f"{name}_bytes_to_target_ratio"] = round(
                base["bytes_per_node_round"]
                * base["rounds"]
                / (r["bytes_per_node_round"] * r["rounds"]),
                2,
            )
    print(json.dumps(line))


if __name__ == "__main__":
    main()
