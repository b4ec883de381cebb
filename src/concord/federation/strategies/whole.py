"""Rules over whole updates: each client's update Δᵢ = (its model − the global model), flattened
into one vector, is compared with the others as a point in parameter space.

The rules (geometric median, centred clipping, norm bounding, bucketing) read updates through
`Deltas`, which hands out one update at a time: a rule that only needs passes over the updates
(clipped sums, Weiszfeld steps, bucket sums) never holds two of them, so at the hub it reads them
from disk one by one, memory O(model) (bucketing: O(buckets × model)).

Each rule also says what it did to each update (`Outcome`: kept, clipped, down-weighted or
excluded, and why); `Verdict` adds the update's norm and its distance to the aggregate, which the
hub records per member and round so that a member can see why its update was discounted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from concord.federation.parameters import Parameters
from concord.federation.strategies.base import ClientUpdate, StoredUpdate, Strategy

F = NDArray[np.float64]

KEPT, CLIPPED, DOWN_WEIGHTED, EXCLUDED = "kept", "clipped", "down-weighted", "excluded"


@dataclass(frozen=True)
class Outcome:
    action: str = KEPT
    reason: str = ""  # a code the pages translate (`federation.robustness.REASONS`)
    detail: dict[str, float] = field(default_factory=dict)  # the numbers the reason quotes


@dataclass(frozen=True)
class Verdict:
    """What the hub records per member and round."""

    client: str
    norm: float
    distance: float  # to the aggregate update
    action: str
    reason: str
    detail: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Deltas:
    """The round's updates as flat float64 vectors, read one at a time (`get`) or all (`stack`)."""

    def __init__(self, loaders: Sequence[Callable[[], F]], weights: Sequence[float]) -> None:
        self._loaders = list(loaders)
        self.weights = np.asarray(weights, dtype=np.float64)

    def __len__(self) -> int:
        return len(self._loaders)

    def get(self, i: int) -> F:
        return self._loaders[i]()

    def __iter__(self) -> Iterator[F]:
        return (self.get(i) for i in range(len(self)))

    def stack(self) -> F:
        """Every update at once, (C, P): for the rules that compare all pairs (Krum)."""
        return np.stack([self.get(i) for i in range(len(self))])

    @classmethod
    def of(cls, vectors: Sequence[F], weights: Sequence[float] | None = None) -> Deltas:
        w = weights if weights is not None else [1.0] * len(vectors)
        return cls([_held(v) for v in vectors], w)


def _held(vector: F) -> Callable[[], F]:
    return lambda: vector


def flatten(params: Parameters, names: Sequence[str]) -> F:
    return np.concatenate([np.asarray(params[k], dtype=np.float64).ravel() for k in names])


def unflatten(flat: F, like: Parameters) -> Parameters:
    out, offset = {}, 0
    for k, v in like.items():
        out[k] = flat[offset : offset + v.size].reshape(v.shape)
        offset += v.size
    return out


def clip(z: F, bound: float) -> tuple[F, bool]:
    """z scaled down to norm `bound` if longer; and whether it was."""
    n = float(np.linalg.norm(z))
    if n > bound:
        return z * (bound / n), True
    return z, False


Rule = Callable[[Deltas, int], tuple[F, list[Outcome]]]


class UpdateRule(Strategy):
    """A strategy whose `rule(deltas, round)` returns the aggregate update and each update's
    outcome. It reads stored updates itself, one at a time (see the module's note)."""

    needs_all_updates = False

    def __init__(self, **params: float) -> None:
        super().__init__(**params)
        self.verdicts: list[Verdict] = []

    def rule(self, deltas: Deltas, round_number: int) -> tuple[F, list[Outcome]]:
        raise NotImplementedError

    def aggregate(
        self, round_number: int, global_params: Parameters, results: Iterable[ClientUpdate]
    ) -> Parameters:
        names = list(global_params)
        base = flatten(global_params, names)
        items = list(results)
        deltas = Deltas.of(
            [flatten(r.parameters, names) - base for r in items],
            [float(r.num_examples) for r in items],
        )
        return self._apply(round_number, global_params, base, deltas, [r.client for r in items])

    def aggregate_stored(
        self, round_number: int, global_params: Parameters, updates: Sequence[StoredUpdate]
    ) -> Parameters:
        names = list(global_params)
        base = flatten(global_params, names)
        loaders = [(lambda u=u: flatten(u.file.load(), names) - base) for u in updates]
        deltas = Deltas(loaders, [float(u.num_examples) for u in updates])
        return self._apply(round_number, global_params, base, deltas, [u.client for u in updates])

    def _apply(
        self,
        round_number: int,
        global_params: Parameters,
        base: F,
        deltas: Deltas,
        clients: list[str],
    ) -> Parameters:
        if len(deltas) == 0:
            raise ValueError("no updates to aggregate")
        combined, outcomes = self.rule(deltas, round_number)
        self.verdicts = verdicts(deltas, combined, outcomes, clients)
        return self._next(global_params, unflatten(base + combined, global_params))


def verdicts(
    deltas: Deltas, combined: F, outcomes: list[Outcome], clients: list[str]
) -> list[Verdict]:
    """One more pass over the updates: each one's norm and distance to the aggregate."""
    out = []
    for i, (client, outcome) in enumerate(zip(clients, outcomes, strict=True)):
        d = deltas.get(i)
        out.append(
            Verdict(
                client,
                round(float(np.linalg.norm(d)), 6),
                round(float(np.linalg.norm(d - combined)), 6),
                outcome.action,
                outcome.reason,
                {k: round(float(v), 6) for k, v in outcome.detail.items()},
            )
        )
    return out


def stored_verdicts(
    strategy: Strategy,
    global_params: Parameters,
    aggregate: Parameters,
    updates: Sequence[StoredUpdate],
) -> list[Verdict]:
    """Each member's record for a round the hub closed: the rule's own verdicts, or (for the
    strategies that only `combine`) norms and distances read back from disk, with the outcomes
    the strategy noted (Krum: who was left out) or "kept"."""
    if isinstance(strategy, UpdateRule) and strategy.verdicts:
        return strategy.verdicts
    names = list(global_params)
    base = flatten(global_params, names)
    loaders = [(lambda u=u: flatten(u.file.load(), names) - base) for u in updates]
    deltas = Deltas(loaders, [float(u.num_examples) for u in updates])
    outcomes = getattr(strategy, "outcomes", None) or [Outcome()] * len(updates)
    combined = flatten(aggregate, names) - base
    return verdicts(deltas, combined, list(outcomes), [u.client for u in updates])
