"""Helper of benchmarks/simulation.py: one scaling point in a fresh process (for peak memory)."""

from __future__ import annotations

import json
import resource
import time


def run(clients: int) -> None:
    from simulation import ROUNDS, ours

    t5, _ = ours(clients, ROUNDS)
    t1, _ = ours(clients, 1)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "round_s": round((t5 - t1) / (ROUNDS - 1), 4),
                "peak_mb": round(peak),
                "at": time.strftime("%H:%M:%S"),
            }
        )
    )
