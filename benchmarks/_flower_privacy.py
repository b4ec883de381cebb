"""Flower's side of benchmarks/privacy.py, run by benchmarks/.venv-flower's interpreter.

    .venv-flower/bin/python _flower_privacy.py FOLDER ROUNDS PER_ROUND Z C

FOLDER holds what benchmarks/privacy.py wrote: x.npy (60,000 × 784 uint8 pixels), y.npy,
x_test.npy, y_test.npy, parts.npy (100 × 600 example indices: the same IID split) and
init_0.npy … init_5.npy (the 2NN's initial parameters from Concord's task, seed 0, in torch's
layout: weight (out, in), bias). Flower's strategy is FedAvg wrapped in
`DifferentialPrivacyServerSideFixedClipping(noise_multiplier=Z, clipping_norm=C,
num_sampled_clients=PER_ROUND)`; Z = 0 runs FedAvg alone. Flower's clients train the same 2NN
(784 → 200 → 200 → 10, ReLU) with the same local schedule (E = 1, B = 10, η = 0.1, mean
cross-entropy, a fresh shuffle each epoch), written in NumPy because torch is not in this
virtual environment. The server evaluates the global model on the 10,000 test digits after
every round. Prints one JSON line per round and a last one with the totals.
"""

import json
import sys
import time
from pathlib import Path

import numpy as np
from flwr.client import ClientApp, NumPyClient
from flwr.common import Context, ndarrays_to_parameters
from flwr.server import ServerApp, ServerAppComponents, ServerConfig
from flwr.server.strategy import DifferentialPrivacyServerSideFixedClipping, FedAvg
from flwr.simulation import run_simulation

FOLDER = Path(sys.argv[1])
ROUNDS, PER_ROUND = int(sys.argv[2]), int(sys.argv[3])
Z, C = float(sys.argv[4]), float(sys.argv[5])
EPOCHS, BATCH, LR = 1, 10, 0.1
CACHE: dict = {}


def load(name: str) -> np.ndarray:
    if name not in CACHE:
        CACHE[name] = np.load(FOLDER / f"{name}.npy", mmap_mode="r")
    return CACHE[name]


def forward(params, x):
    w1, b1, w2, b2, w3, b3 = params
    h1 = np.maximum(x @ w1.T + b1, 0)
    h2 = np.maximum(h1 @ w2.T + b2, 0)
    return h1, h2, h2 @ w3.T + b3


def sgd_step(params, x, y):
    """One step of mean cross-entropy, as torch's F.cross_entropy and w -= η·grad."""
    _w1, _b1, w2, _b2, w3, _b3 = params
    h1, h2, logits = forward(params, x)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1
    g3 = p / len(y)
    d2 = (g3 @ w3) * (h2 > 0)
    d1 = (d2 @ w2) * (h1 > 0)
    grads = [d1.T @ x, d1.sum(0), d2.T @ h1, d2.sum(0), g3.T @ h2, g3.sum(0)]
    for w, g in zip(params, grads):
        w -= LR * g.astype(np.float32)


class Client(NumPyClient):
    def __init__(self, cid: int) -> None:
        self.cid = cid
        index = np.asarray(load("parts")[cid])
        self.x = np.asarray(load("x")[index], dtype=np.float32) / np.float32(255.0)
        self.y = np.asarray(load("y")[index])

    def fit(self, parameters, config):
        params = [np.array(p, dtype=np.float32) for p in parameters]
        rng = np.random.default_rng([int(config.get("round", 0)), self.cid])
        for _ in range(EPOCHS):
            order = rng.permutation(len(self.y))
            for start in range(0, len(order), BATCH):
                batch = order[start : start + BATCH]
                sgd_step(params, self.x[batch], self.y[batch])
        return params, len(self.y), {}


def client_fn(context: Context):
    return Client(int(context.node_config["partition-id"])).to_client()


def evaluate(server_round, parameters, config):
    x = np.asarray(load("x_test"), dtype=np.float32) / np.float32(255.0)
    y = np.asarray(load("y_test"))
    params = [np.asarray(p, dtype=np.float32) for p in parameters]
    accuracy = float((forward(params, x)[2].argmax(axis=1) == y).mean())
    print(
        json.dumps(
            {"round": server_round, "accuracy": accuracy, "t": time.perf_counter() - STARTED}
        ),
        flush=True,
    )
    return 0.0, {"accuracy": accuracy}


def server_fn(context: Context):
    init = [np.load(FOLDER / f"init_{i}.npy") for i in range(6)]
    clients = len(load("parts"))
    strategy = FedAvg(
        fraction_fit=PER_ROUND / clients,
        fraction_evaluate=0.0,
        min_fit_clients=PER_ROUND,
        min_available_clients=clients,
        initial_parameters=ndarrays_to_parameters(init),
        evaluate_fn=evaluate,
        on_fit_config_fn=lambda r: {"round": r},
    )
    if Z > 0:
        strategy = DifferentialPrivacyServerSideFixedClipping(
            strategy, noise_multiplier=Z, clipping_norm=C, num_sampled_clients=PER_ROUND
        )
    return ServerAppComponents(strategy=strategy, config=ServerConfig(num_rounds=ROUNDS))


STARTED = time.perf_counter()
run_simulation(
    server_app=ServerApp(server_fn=server_fn),
    client_app=ClientApp(client_fn=client_fn),
    num_supernodes=len(np.load(FOLDER / "parts.npy", mmap_mode="r")),
    backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0}},
)
print(json.dumps({"total_s": time.perf_counter() - STARTED}), flush=True)
