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

    def rule(self, deltas: Deltas, round_number: int) -> tuple[F, list[Outcome]]:
        first = deltas.get(0)
        centre = (
            self.centre if self.centre is not None and self.centre.shape == first.shape else None
        )
        if centre is None:
            centre = np.zeros_like(first)
        beta = float(self.params.get("momentum", 0.0))
        tau = self.params.get("tau")
        v, clipped, used = centred_clip(
            deltas,
            beta * centre,
            None if tau is None else float(tau),
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
