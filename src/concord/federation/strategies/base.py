"""A strategy owns the round: select, configure, aggregate. Algorithms override hooks only.

- `combine(results)` turns the clients' updates into one model (default: the example-weighted
  mean, streamed);
- `server_update(global, combined)` turns that into the next global model (default: take it).

A server optimiser keeps state between rounds (momentum, moments); `state()` and `load_state()`
give it to the hub as named tensors, which it checkpoints beside the model so that a restarted
hub goes on exactly where it stopped.

At the hub, updates wait on disk; `aggregate_stored` reads them piece by piece for the weighted
mean (memory O(model)). A strategy whose `combine` is something else sets `needs_all_updates`:
the coordinate-wise median, trimmed mean and Krum compare every client's value of a coordinate
(Krum: every pair of whole updates), so they load the round's updates together —
O(clients × model), the price of robustness.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from concord.federation.parameters import Parameters, TensorFile
from concord.federation.strategies.aggregate import weighted_mean_pieces, weighted_mean_stream


@dataclass
class ClientUpdate:
    parameters: Parameters
    num_examples: int
    client: str
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class StoredUpdate:
    """A client's update as the hub keeps it: a file, read when needed."""

    file: TensorFile
    num_examples: int
    client: str
    metrics: dict[str, float] = field(default_factory=dict)

    def load(self) -> ClientUpdate:
        return ClientUpdate(self.file.load(), self.num_examples, self.client, self.metrics)


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

    def state(self) -> Parameters:
        """What the server optimiser carries to the next round (nothing, for plain averaging)."""
        return {}

    def load_state(self, state: Parameters) -> None:
        """Takes back what `state()` gave, e.g. in a hub process started after a crash."""

    def aggregate(
        self, round_number: int, global_params: Parameters, results: Iterable[ClientUpdate]
    ) -> Parameters:
        combined = self.combine(results)
        return self._next(global_params, combined)

    def aggregate_stored(
        self, round_number: int, global_params: Parameters, updates: Sequence[StoredUpdate]
    ) -> Parameters:
        """`aggregate` over updates on disk; the weighted mean never holds two of them."""
        if self.needs_all_updates:
            combined = self.combine(u.load() for u in updates)
        else:
            shapes = {k: (v.shape, v.dtype) for k, v in global_params.items()}
            combined = weighted_mean_pieces(
                [(u.file, float(u.num_examples)) for u in updates], shapes
            )
        return self._next(global_params, combined)

    def _next(self, global_params: Parameters, combined: Parameters) -> Parameters:
        updated = self.server_update(global_params, combined)
        return {k: v.astype(global_params[k].dtype, copy=False) for k, v in updated.items()}
