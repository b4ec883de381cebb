"""Geometric median by smoothed Weiszfeld iterations (RFA, Pillutla et al. 2022): the point that
minimises the (example-weighted) sum of distances to the updates, which a minority of updates
cannot drag arbitrarily far (breakdown point ½).

    v ← Σ βᵢ xᵢ / Σ βᵢ,   βᵢ = αᵢ / max(ν, ‖xᵢ − v‖)

ν (`smoothing`) keeps a step finite when v lands on an update; `iterations` bounds the work;
each step is one pass over the updates, so it never needs two of them at once.
"""

from __future__ import annotations

import numpy as np

from concord.federation.strategies.whole import (
    DOWN_WEIGHTED,
    KEPT,
    Deltas,
    F,
    Outcome,
    UpdateRule,
)


def weiszfeld(
    deltas: Deltas, smoothing: float = 1e-6, iterations: int = 10, tolerance: float = 1e-7
) -> tuple[F, F]:
    """The smoothed geometric median, and each update's final share of it (Σ = 1)."""
    alpha = deltas.weights / deltas.weights.sum()
    v = sum(a * x for a, x in zip(alpha, deltas, strict=True))
    assert isinstance(v, np.ndarray)
    share = alpha.copy()
    for _ in range(iterations):
        beta = np.array(
            [
                a / max(smoothing, float(np.linalg.norm(x - v)))
                for a, x in zip(alpha, deltas, strict=True)
            ]
        )
        share = beta / beta.sum()
        nxt = sum(s * x for s, x in zip(share, deltas, strict=True))
        assert isinstance(nxt, np.ndarray)
        moved = float(np.linalg.norm(nxt - v))
        v = nxt
        if moved <= tolerance * max(1.0, float(np.linalg.norm(v))):
            break
    return v, share


class GeometricMedian(UpdateRule):
    name = "geometric-median"

    def rule(self, deltas: Deltas, round_number: int) -> tuple[F, list[Outcome]]:
        v, share = weiszfeld(
            deltas,
            float(self.params.get("smoothing", 1e-6)),
            int(self.params.get("iterations", 10)),
        )
        plain = deltas.weights / deltas.weights.sum()
        outcomes = []
        for s, p in zip(share, plain, strict=True):
            # Less than half the weight a plain mean would give: it counted for less.
            if s < 0.5 * p:
                outcomes.append(Outcome(DOWN_WEIGHTED, "far-from-median", {"share": s, "plain": p}))
            else:
                outcomes.append(Outcome(KEPT))
        return v, outcomes
