"""Bucketing (Karimireddy, He & Jaggi 2022): shuffle the round's updates into random buckets of
`size` s, average each bucket, and give the bucket means to a robust rule. Averaging shrinks the
spread between honest updates on non-IID data (by about √s), so the robust rule can tell them from
crafted ones, while a crafted update taints at most its own bucket.

The bucket means are sums accumulated as the updates are read, one at a time: memory
O(n/s × model), never O(n × model). With every update honest and the plain mean as the inner
rule, the result is the plain mean (bucket sizes equal): tested.
"""

from __future__ import annotations

import math

import numpy as np

from concord.federation.parameters import Parameters
from concord.federation.strategies.base import ClientUpdate, Strategy
from concord.federation.strategies.centred_clipping import CentredClipping
from concord.federation.strategies.whole import KEPT, Deltas, F, Outcome, UpdateRule


def buckets(n: int, size: int, seed: int, round_number: int) -> list[int]:
    """Each update's bucket: a seeded shuffle cut into runs of `size`."""
    order = np.random.default_rng([seed, round_number]).permutation(n)
    bucket = [0] * n
    for position, i in enumerate(order):
        bucket[int(i)] = position // size
    return bucket


def bucket_means(deltas: Deltas, bucket: list[int]) -> list[F]:
    sums: dict[int, F] = {}
    counts: dict[int, int] = {}
    for b, x in zip(bucket, deltas, strict=True):
        sums[b] = x.copy() if b not in sums else sums[b] + x
        counts[b] = counts.get(b, 0) + 1
    return [sums[b] / counts[b] for b in sorted(sums)]


def inner_rule(strategy: Strategy, deltas: Deltas, round_number: int) -> tuple[F, list[Outcome]]:
    """Any strategy as a rule over flat vectors: an `UpdateRule` directly, the others (mean,
    median, trimmed mean, Krum) through `combine`, which they compute the same on updates as on
    models (they are unchanged by a common shift)."""
    if isinstance(strategy, UpdateRule):
        return strategy.rule(deltas, round_number)
    items = [
        ClientUpdate({"flat": x}, int(w), str(i))
        for i, (w, x) in enumerate(zip(deltas.weights, deltas, strict=True))
    ]
    combined = strategy.combine(items)["flat"]
    outcomes = getattr(strategy, "outcomes", None) or [Outcome(KEPT)] * len(items)
    return np.asarray(combined, dtype=np.float64), list(outcomes)


class Bucketing(UpdateRule):
    """Wraps another strategy: `Bucketing(CentredClipping(), size=2)`."""

    def __init__(self, inner: Strategy, size: int = 2, seed: int = 0) -> None:
        super().__init__(**inner.params)
        if size < 1:
            raise ValueError("bucket size must be at least 1")
        self.inner, self.size, self.seed = inner, size, seed
        self.name = f"bucketing+{inner.name}"

    def rule(self, deltas: Deltas, round_number: int) -> tuple[F, list[Outcome]]:
        bucket = buckets(len(deltas), self.size, self.seed, round_number)
        means = bucket_means(deltas, bucket)
        if isinstance(self.inner, CentredClipping) and "tau" not in self.inner.params:
            # τ from the updates themselves, not from the bucket means: a median over the
            # means breaks as soon as half the buckets hold an attacker (with s = 2, from a
            # quarter of the updates), one over the updates only at half of them.
            centre = self.inner.start(means[0])
            tau = float(np.median([np.linalg.norm(x - centre) for x in deltas]))
            combined, per_bucket = self.inner.rule(Deltas.of(means), round_number, tau)
        else:
            combined, per_bucket = inner_rule(self.inner, Deltas.of(means), round_number)
        outcomes = []
        for b in bucket:
            o = per_bucket[b]
            detail = {**o.detail, "bucket": float(b + 1), "buckets": float(len(means))}
            outcomes.append(Outcome(o.action, o.reason and f"bucket-{o.reason}", detail))
        return combined, outcomes

    def state(self) -> Parameters:
        return self.inner.state()

    def load_state(self, state: Parameters) -> None:
        self.inner.load_state(state)


def bucket_count(n: int, size: int) -> int:
    return math.ceil(n / size)
