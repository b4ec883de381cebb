"""A strategy owns the round: select, configure, aggregate. Algorithms override hooks only.

- `combine(results)` turns the clients' updates into one model (default: the example-weighted
  mean, streamed);
- `server_update(global, combined)` turns that into the next global model (default: take it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from concord.federation.parameters import Parameters
from concord.federation.strategies.aggregate import weighted_mean_stream


@dataclass
class ClientUpdate:
    parameters: Parameters
    num_examples: int
    client: str
    metrics: dict[str, float] = field(default_factory=dict)


class Strategy:
    name = "fedavg"
    needs_all_updates = False  # robust aggregators must see every update at once

    def __init__(self, **params: float) -> None:
        self.params = params

    def select(
        self, round_number: int, available: list[str], per_round: int | None, seed: int = 0
    ) -> list[str]:
        """Which clients train this round (all, or a seeded sample of `per_round`)."""
        if per_round is None or per_round >= len(available):
            return sorted(available)
        rng = np.random.default_rng([seed, round_number])
        return sorted(rng.choice(sorted(available), size=per_round, replace=False).tolist())

    def configure(self, round_number: int, local: dict[str, Any]) -> dict[str, Any]:
        return {**local, "round": round_number}

    def combine(self, results: Iterable[ClientUpdate]) -> Parameters:
        mean, _examples = weighted_mean_stream((r.parameters, r.num_examples) for r in results)
        return mean

    def server_update(self, global_params: Parameters, combined: Parameters) -> Parameters:
        return combined

    def aggregate(
        self, round_number: int, global_params: Parameters, results: Iterable[ClientUpdate]
    ) -> Parameters:
        combined = self.combine(results)
        updated = self.server_update(global_params, combined)
        return {k: v.astype(global_params[k].dtype) for k, v in updated.items()}
