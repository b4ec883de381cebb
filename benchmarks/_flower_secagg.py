"""Flower's side of benchmarks/secagg.py, run by benchmarks/.venv-flower's interpreter.

    .venv-flower/bin/python _flower_secagg.py CLIENTS NEIGHBOURS THRESHOLD SIZE ROUNDS

Flower's SecAggPlusWorkflow (flwr.server.workflow) inside DefaultWorkflow, in Flower's
simulation runtime (Ray): every client's fit returns a fixed random vector of SIZE float64
values in [−1, 1] and a weight in [50, 300), as in ours; the ClientApp carries
`secaggplus_mod`, which runs the client's side of the protocol. All clients take part in every
round; no client drops out. A round's time is the strategy's configure_fit → aggregate_fit, as
the server sees it: the four SecAgg+ stages for all clients (the clients' work runs in Ray's
workers on this machine's cores) and the unmasking. Prints one JSON line.
"""

import json
import sys
import time

import numpy as np
from flwr.client import ClientApp, NumPyClient
from flwr.client.mod import secaggplus_mod
from flwr.common import Context, ndarrays_to_parameters
from flwr.server import LegacyContext, ServerApp, ServerConfig
from flwr.server.strategy import FedAvg
from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow
from flwr.simulation import run_simulation

CLIENTS, SHARES, THRESHOLD, SIZE, ROUNDS = (int(a) for a in sys.argv[1:6])
CLIP_RANGE = 4.0


class Client(NumPyClient):
    def __init__(self, cid: int) -> None:
        rng = np.random.default_rng([CLIENTS, cid])
        self.vector = rng.uniform(-1, 1, SIZE)
        self.weight = int(rng.integers(50, 300))

    def fit(self, parameters, config):
        return [self.vector], self.weight, {}


def client_fn(context: Context):
    return Client(int(context.node_config["partition-id"])).to_client()


class Timed(FedAvg):
    """FedAvg that stamps the start (configure_fit) and end (aggregate_fit) of each round."""

    def configure_fit(self, server_round, parameters, client_manager):
        self._start = time.perf_counter()
        return super().configure_fit(server_round, parameters, client_manager)

    def aggregate_fit(self, server_round, results, failures):
        out = super().aggregate_fit(server_round, results, failures)
        ended = time.perf_counter()
        print(
            json.dumps(
                {
                    "round": server_round,
                    "s": ended - self._start,
                    "results": len(results),
                    "failures": len(failures),
                }
            ),
            flush=True,
        )
        return out


app = ServerApp()


@app.main()
def main(grid, context: Context) -> None:
    strategy = Timed(
        fraction_fit=1.0,
        fraction_evaluate=0.0,
        min_fit_clients=CLIENTS,
        min_available_clients=CLIENTS,
        initial_parameters=ndarrays_to_parameters([np.zeros(SIZE)]),
    )
    legacy = LegacyContext(
        context=context, config=ServerConfig(num_rounds=ROUNDS), strategy=strategy
    )
    # Flower's num_shares counts the client itself (one share kept): our k neighbours + 1.
    shares = 1.0 if SHARES >= CLIENTS - 1 else SHARES + 1
    workflow = DefaultWorkflow(
        fit_workflow=SecAggPlusWorkflow(
            num_shares=shares,
            reconstruction_threshold=THRESHOLD,
            clipping_range=CLIP_RANGE,
            max_weight=300.0,
        )
    )
    workflow(grid, legacy)


started = time.perf_counter()
run_simulation(
    server_app=app,
    client_app=ClientApp(client_fn=client_fn, mods=[secaggplus_mod]),
    num_supernodes=CLIENTS,
    backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0}},
)
print(json.dumps({"total_s": time.perf_counter() - started}), flush=True)
