"""Centred clipping (Karimireddy, He & Jaggi 2021): start from a centre, `momentum` × the
previous round's aggregate (the server's momentum, which honest updates stay near; the default
0 starts from no change, 1 from the last aggregate), and move towards the updates, each clipped
to radius τ around the centre:

    v ← v + (1/n) Σ clip(xᵢ − v, τ)      (`iterations` times; the paper uses one)

So no single update moves the aggregate by more than τ/n per step, however large it is. τ is the
spec's `tau`, or, if absent, the median distance of this round's updates to the centre (then at
most half are clipped). Each step is one pass over the updates: memory O(model).
"""

from __future__ import annotations

import numpy as np

from concord.federation.parameters import Parameters
from concord.federation.strategies.whole import (
    CLIPPED,
    KEPT,
    Deltas,
    F,
    Outcome,
    UpdateRule,
    clip,
)


def centred_clip(
    deltas: Deltas, centre: F, tau: float | None = None, iterations: int = 1
) -> tuple[F, list[bool], float]:
    """The aggregate, whether each update was clipped in the last step, and the τ used."""
    v = centre.copy()
    if tau is None:
        tau = float(np.median([np.linalg.norm(x - v) for x in deltas]))
    clipped = [False] * len(deltas)
    for _ in range(iterations):
        step = np.zeros_like(v)
        for i, x in enumerate(deltas):
            z, clipped[i] = clip(x - v, tau)
            step += z
        v = v + step / len(deltas)
    return v, clipped, tau


class CentredClipping(UpdateRule):
    name = "centred-clipping"

    def __init__(self, **params: float) -> None:
        super().__init__(**params)
        self.centre: F | None = None  # the last aggregate update, the next round's centre

    def start(self, like: F) -> F:
        """The centre this round starts from: `momentum` × the last aggregate (or zero)."""
        beta = float(self.params.get("momentum", 0.0))
        if self.centre is not None and self.centre.shape == like.shape:
            return beta * self.centre
        return np.zeros_like(like)

    def rule(
        self, deltas: Deltas, round_number: int, tau: float | None = None
    ) -> tuple[F, list[Outcome]]:
        """`tau` given by a caller (bucketing) stands in for the spec's when it names none."""
        fixed = self.params.get("tau")
        v, clipped, used = centred_clip(
            deltas,
            self.start(deltas.get(0)),
            float(fixed) if fixed is not None else tau,
            int(self.params.get("iterations", 1)),
        )
        self.centre = v
        outcomes = [
            Outcome(CLIPPED, "clipped-to-centre", {"tau": used}) if c else Outcome(KEPT)
            for c in clipped
        ]
        return v, outcomes

    def state(self) -> Parameters:
        return {} if self.centre is None else {"centre": self.centre}

    def load_state(self, state: Parameters) -> None:
        if "centre" in state:
            self.centre = np.asarray(state["centre"], dtype=np.float64)
