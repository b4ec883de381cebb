"""Simulating many clients: `concord simulate` as a user runs it, beside Flower's Ray-backed
simulation.

    python benchmarks/simulation.py            # 1,000 clients; ours also up to 100,000
    python benchmarks/simulation.py --quick    # 100 clients, one CLI run; ours at 1,000

The CLI path: `concord simulate --task logreg-mnist --clients N --batch-size 0 --json
--evaluate-every R` in a fresh process, three times; each run's training time per round is
the median of the `seconds` its JSON history reports for rounds 2…R (round 1 pays first-touch
costs), and evaluation (every client's test share, the fairness aggregates) is its own
`evaluation_seconds`, reported apart. We give the median and the range of the three runs, and
the machine's load (it is shared).

Flower does the same work: MNIST's 60,000 training images shared equally (60 each for 1,000
clients), a multinomial logistic regression (7,850 parameters), one full-batch gradient step
per round, every client in every round, FedAvg. Flower runs in its own virtual environment
(benchmarks/.venv-flower, `pip install "flwr[simulation]"`), created on first use; its
per-round time is the mean of rounds 2…5, timed by its server between one round's aggregate
and the next (the strategy's `evaluate_fn` marks each), so start-up costs stay out of it
(`--no-flower` skips it). The library's own figure on synthetic data (20 examples of 784
binary features per client) stays beside it, checked against a plain NumPy loop, with its
scaling to 100,000 clients. The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from concord.federation.simulation import simulate
from concord.federation.strategies.fedavg import FedAvg
from concord.federation.tasks.logreg import LogisticRegression

HERE = Path(__file__).parent
FLOWER = HERE / ".venv-flower" / "bin" / "python"
EXAMPLES, FEATURES, CLASSES, ROUNDS, LR = 20, 784, 10, 5, 0.1


class Wide(LogisticRegression):
    name = "logreg-784"
    features = FEATURES
    classes = CLASSES


def data(clients: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Binarised 784-pixel inputs (uint8, as binarised MNIST) labelled by a fixed random
    linear model; generated in blocks so that 100,000 clients fit in memory."""
    rng = np.random.default_rng(seed)
    truth = rng.standard_normal((FEATURES, CLASSES)).astype(np.float32)
    rows = clients * EXAMPLES
    x = np.empty((rows, FEATURES), dtype=np.uint8)
    y = np.empty(rows, dtype=np.int64)
    for start in range(0, rows, 50_000):
        end = min(rows, start + 50_000)
        block = (rng.random((end - start, FEATURES), dtype=np.float32) < 0.2).astype(np.uint8)
        x[start:end] = block
        noise = rng.gumbel(size=(end - start, CLASSES)).astype(np.float32)
        y[start:end] = (block @ truth + noise).argmax(axis=1)
    return x, y


def ours(clients: int, rounds: int, vectorised: bool = True) -> tuple[float, dict]:
    x, y = data(clients)
    parts = [np.arange(i * EXAMPLES, (i + 1) * EXAMPLES) for i in range(clients)]
    t0 = time.perf_counter()
    result = simulate(
        Wide(),
        x,
        y,
        parts,
        FedAvg(),
        rounds=rounds,
        vectorised=vectorised,
        local={"epochs": 1, "batch_size": 0, "learning_rate": LR},
    )
    return time.perf_counter() - t0, result.parameters


def cli(clients: int, rounds: int) -> dict[str, float]:
    """One `concord simulate` run in a fresh process, timed from its own JSON history."""
    began = time.perf_counter()
    done = subprocess.run(
        [
            *(sys.executable, "-c", "from concord.cli import main; main()", "simulate"),
            *("--task", "logreg-mnist", "--clients", str(clients), "--batch-size", "0"),
            *("--rounds", str(rounds), "--evaluate-every", str(rounds), "--json"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    history = json.loads(done.stdout)
    last = history[-1]
    return {
        "train_round_s": statistics.median(h["seconds"] for h in history[1:]),
        "first_round_s": history[0]["seconds"],
        "evaluation_s": last["evaluation_seconds"],
        "accuracy": last["accuracy"],
        "accuracy_worst10": last["accuracy_worst10"],
        "wall_s": time.perf_counter() - began,
    }


FLOWER_APP = r"""
import sys, time, json
import numpy as np
import flwr as fl
from flwr.client import ClientApp, NumPyClient
from flwr.common import Context, ndarrays_to_parameters
from flwr.server import ServerApp, ServerAppComponents, ServerConfig
from flwr.server.strategy import FedAvg
from flwr.simulation import run_simulation

clients, rounds = int(sys.argv[1]), int(sys.argv[2])
EX, D, K, LR = 60000 // clients, 784, 10, 0.1  # MNIST's training images shared equally
rng = np.random.default_rng(0)
truth = rng.standard_normal((D, K))
X = (rng.random((clients * EX, D), dtype=np.float32) < 0.2).astype(np.float32)
Y = (X @ truth + rng.gumbel(size=(clients * EX, K))).argmax(axis=1)

class Client(NumPyClient):
    def __init__(self, cid):
        self.x = X[cid * EX:(cid + 1) * EX]
        self.y = np.eye(K)[Y[cid * EX:(cid + 1) * EX]]
    def fit(self, parameters, config):
        w, b = parameters
        z = self.x @ w + b
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z); p /= p.sum(axis=1, keepdims=True)
        g = (p - self.y) / len(self.x)
        return [w - LR * self.x.T @ g, b - LR * g.sum(axis=0)], len(self.x), {}

def client_fn(context: Context):
    return Client(int(context.node_config["partition-id"])).to_client()

marks = {}  # server round -> when its aggregate was ready (0: the initial model)

def mark(server_round, parameters, config):
    marks[server_round] = time.perf_counter()
    return None

def server_fn(context: Context):
    init = ndarrays_to_parameters([np.zeros((D, K), np.float32), np.zeros(K, np.float32)])
    strategy = FedAvg(fraction_fit=1.0, fraction_evaluate=0.0, min_fit_clients=clients,
                      min_available_clients=clients, initial_parameters=init, evaluate_fn=mark)
    return ServerAppComponents(strategy=strategy, config=ServerConfig(num_rounds=rounds))

t0 = time.perf_counter()
run_simulation(server_app=ServerApp(server_fn=server_fn), client_app=ClientApp(client_fn=client_fn),
               num_supernodes=clients,
               backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0}})
rounds_s = [marks[r] - marks[r - 1] for r in range(2, rounds + 1)]
print(json.dumps({"seconds": time.perf_counter() - t0, "round_s": sum(rounds_s) / len(rounds_s)}))
"""


def flower(clients: int, rounds: int) -> float | str:
    """Flower's mean time per round over rounds 2…`rounds`, or why there is none."""
    if not FLOWER.exists():
        try:
            subprocess.run([sys.executable, "-m", "venv", str(FLOWER.parent.parent)], check=True)
            subprocess.run(
                [str(FLOWER), "-m", "pip", "install", "-q", "flwr[simulation]", "numpy"], check=True
            )
        except subprocess.CalledProcessError as exc:
            return f"Flower could not be installed: {exc}"
    done = subprocess.run(
        [str(FLOWER), "-c", FLOWER_APP, str(clients), str(rounds)],
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return f"Flower failed: {done.stderr[-300:]}"
    return float(json.loads(lines[-1])["round_s"])


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-flower", action="store_true", help="Skip Flower's side.")
    arguments = parser.parse_args()
    quick = arguments.quick
    clients = 100 if quick else 1000
    load = os.getloadavg()[0]
    # three runs for a median and a range; one in a quick run, to stay under a minute
    runs = [cli(clients, 3 if quick else ROUNDS) for _ in range(1 if quick else 3)]
    train = sorted(r["train_round_s"] for r in runs)
    train_median = statistics.median(train)
    on_cli: dict[str, object] = {
        "train_round_s_median": round(train_median, 4),
        "train_round_s_range": [round(train[0], 4), round(train[-1], 4)],
        "evaluation_s_median": round(statistics.median(r["evaluation_s"] for r in runs), 4),
        "first_round_s_median": round(statistics.median(r["first_round_s"] for r in runs), 4),
        "wall_s_median": round(statistics.median(r["wall_s"] for r in runs), 2),
        "accuracy": round(runs[0]["accuracy"], 4),
        "accuracy_worst10": round(runs[0]["accuracy_worst10"], 4),
        "load_before": round(load, 2),
        "load_after": round(os.getloadavg()[0], 2),
    }
    print(f"concord simulate, {clients} clients: {on_cli}")
    ours(50, 2)  # warm up
    t5, fast = ours(clients, ROUNDS)
    t1, _ = ours(clients, 1)
    ours_round = (t5 - t1) / (ROUNDS - 1)
    _, plain = ours(clients, ROUNDS, vectorised=False)
    agreement = max(float(np.abs(fast[k] - plain[k]).max()) for k in fast)
    result: dict[str, object] = {
        "clients": clients,
        "cli": on_cli,
        "examples_per_client": EXAMPLES,
        "parameters": FEATURES * CLASSES + CLASSES,
        "rounds": ROUNDS,
        "ours_round_s": round(ours_round, 4),
        "max_abs_diff_vs_numpy_loop": agreement,
    }
    scaling = {}
    for n in [1_000] if quick else [1_000, 10_000, 100_000]:
        child = subprocess.run(
            [sys.executable, "-c", f"import _simulation_scale as s; s.run({n})"],
            cwd=HERE,
            capture_output=True,
            text=True,
            check=True,
        )
        scaling[n] = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"ours at {n} clients: {scaling[n]}")
    result["scaling"] = scaling
    if arguments.no_flower:
        print(json.dumps(result))
        return
    theirs = flower(clients, ROUNDS)
    if isinstance(theirs, str):
        print(theirs)
        result["flower"] = theirs
    else:
        result["flower_round_s"] = round(theirs, 3)
        result["speedup"] = round(theirs / ours_round, 1)
        result["speedup_cli"] = round(theirs / train_median, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
