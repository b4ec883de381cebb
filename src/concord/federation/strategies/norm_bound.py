"""Norm bounding at the hub (Sun et al. 2019): every update longer than a bound is scaled down
to it, then the example-weighted mean is taken. The bound is the spec's `bound`, or `factor` ×
the median norm of the round's updates (default factor 1: the longer half are shortened), so a
boosted update counts no more than a typical one. Two passes, one update at a time.
"""

from __future__ import annotations

import numpy as np

from concord.federation.strategies.whole import (
    CLIPPED,
    KEPT,
    Deltas,
    F,
    Outcome,
    UpdateRule,
    clip,
)


def norm_bounded_mean(deltas: Deltas, bound: float) -> tuple[F, list[bool]]:
    total: F | None = None
    clipped = []
    for w, x in zip(deltas.weights, deltas, strict=True):
        z, was = clip(x, bound)
        clipped.append(was)
        total = w * z if total is None else total + w * z
    assert total is not None
    return total / deltas.weights.sum(), clipped


class NormBound(UpdateRule):
    name = "norm-bound"

    def rule(self, deltas: Deltas, round_number: int) -> tuple[F, list[Outcome]]:
        fixed = self.params.get("bound")
        if fixed is not None:
            bound = float(fixed)
        else:
            norms = [float(np.linalg.norm(x)) for x in deltas]
            bound = float(self.params.get("factor", 1.0)) * float(np.median(norms))
        mean, clipped = norm_bounded_mean(deltas, bound)
        outcomes = [
            Outcome(CLIPPED, "norm-above-bound", {"bound": bound}) if c else Outcome(KEPT)
            for c in clipped
        ]
        return mean, outcomes
