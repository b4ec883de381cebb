"""Secure aggregation (SecAgg+): the cost of a round with and without it.

    python benchmarks/secagg.py            # 10, 100 and 1,000 simulated clients
    python benchmarks/secagg.py --quick    # 10 and 100 clients (under a minute)

The work: every client holds a delta the size of logreg-digits (650 parameters, float64) and
a weight; the server needs their weighted mean. "plain" is that mean over the clear deltas (as
the hub computes it without SecAgg+); "secagg" runs a whole SecAgg+ round in this process
through the functions `concord node` and the hub call (privacy.secagg: key agreement, shares,
quantisation, masks, reveals, unmasking), with 10 % of the clients dropping out after sharing
keys. The figure is the whole round's compute for all clients plus the server, on one core:
a real round spreads the clients' part over their own machines. Bytes per client: what a
client sends and receives in the protocol's messages (public keys and the roster, encrypted
shares, the masked vector, the reveals), against 4·d bytes for a plain float32 update.
Neighbourhoods: all others up to 10 clients, then k = 2⌈log2 n⌉ + 2 (SecAgg+'s logarithmic
degree); t: a majority of the neighbourhood.

Flower's SecAggPlusWorkflow is not measured: `flwr` is not importable in this environment,
and installing it (1.42.0) would replace this project's FastAPI, Starlette, Typer, Rich and
Uvicorn with other versions; the column is left out rather than estimated.

The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time

import numpy as np

from concord.federation.privacy import secagg

SIZE = 650  # logreg-digits: 64 × 10 weights + 10 biases
CLIP_RANGE = 4.0


def neighbourhood(clients: int) -> int:
    return 0 if clients <= 10 else 2 * math.ceil(math.log2(clients)) + 2


def run(clients: int, repeats: int) -> dict[str, float]:
    rng = np.random.default_rng(clients)
    deltas = {i: rng.uniform(-1, 1, SIZE) for i in range(1, clients + 1)}
    weights = {i: int(rng.integers(50, 300)) for i in deltas}
    dropped = list(range(1, clients + 1, 10))  # 10 %
    plain_times, secure_times = [], []
    traffic = 0.0
    error = 0.0
    for r in range(repeats + 1):  # the first is a warm-up
        started = time.perf_counter()
        kept = [i for i in deltas if i not in dropped]
        plain = sum(deltas[i] * weights[i] for i in kept) / sum(weights[i] for i in kept)
        middle = time.perf_counter()
        mean, result = secagg.secure_mean(
            deltas,
            weights,
            clip_range=CLIP_RANGE,
            num_shares=neighbourhood(clients),
            threshold=0,
            drop_after_shares=dropped,
            seed=r,
        )
        ended = time.perf_counter()
        if r:
            plain_times.append(middle - started)
            secure_times.append(ended - middle)
        traffic = result.bytes_per_client
        error = float(np.max(np.abs(mean - plain)))
        bound = 1 / secagg.scale_for(CLIP_RANGE, sum(weights.values()))
        assert error <= bound, (error, bound)
    return {
        "clients": clients,
        "num_shares": neighbourhood(clients) or clients - 1,
        "plain_round_s": statistics.median(plain_times),
        "secagg_round_s": statistics.median(secure_times),
        "plain_bytes_per_client": 4 * SIZE,
        "secagg_bytes_per_client": round(traffic),
        "max_error": error,
        "error_bound": bound,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    sizes = [10, 100] if args.quick else [10, 100, 1000]
    rows = []
    for clients in sizes:
        row = run(clients, repeats=3 if clients < 1000 else 1)
        rows.append(row)
        print(
            f"{clients:>5} clients (k={row['num_shares']}): plain {row['plain_round_s']:.4f} s, "
            f"SecAgg+ {row['secagg_round_s']:.3f} s; bytes/client {row['plain_bytes_per_client']}"
            f" vs {row['secagg_bytes_per_client']}; max error {row['max_error']:.2e} "
            f"(bound {row['error_bound']:.2e})"
        )
    print(
        "flower: not measured (flwr not importable; installing it would change FastAPI, "
        "Starlette, Typer, Rich and Uvicorn)"
    )
    out: dict[str, object] = {"vector_size": SIZE, "flower": "not measured"}
    for row in rows:
        n = row["clients"]
        out[f"plain_round_s_{n}"] = round(row["plain_round_s"], 6)
        out[f"secagg_round_s_{n}"] = round(row["secagg_round_s"], 4)
        out[f"secagg_bytes_per_client_{n}"] = row["secagg_bytes_per_client"]
        out[f"secagg_overhead_ratio_{n}"] = round(
            row["secagg_round_s"] / max(row["plain_round_s"], 1e-9), 1
        )
    out["plain_bytes_per_client"] = 4 * SIZE
    out["clients"] = sizes
    print(json.dumps(out))


if __name__ == "__main__":
    main()
