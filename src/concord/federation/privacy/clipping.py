"""Clipping a client's update (its delta from the round's global model) to an L2 norm.

The norm is taken over ALL of the model's tensors together, as in DP-FedAvg (McMahan et al.
2018): the bound on one client's influence on the sum is what the Gaussian noise is scaled to.
Adaptive clipping (Andrew et al. 2021) moves the bound toward a quantile of the updates' norms,
with the rule Flower's `DifferentialPrivacyServerSideAdaptiveClipping` uses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from concord.federation.parameters import Parameters


def difference(params: Parameters, base: Parameters) -> Parameters:
    """The update as a delta from `base`, in float64 (so clipping and sums lose nothing)."""
    return {k: params[k].astype(np.float64) - base[k].astype(np.float64) for k in base}


def l2_norm(delta: Parameters) -> float:
    return math.sqrt(sum(float(np.vdot(v, v)) for v in delta.values()))


def clip(delta: Parameters, bound: float) -> tuple[Parameters, float]:
    """`delta` scaled down to norm `bound` if it is longer; returns it and its norm before."""
    norm = l2_norm(delta)
    scale = min(1.0, bound / norm) if norm > 0 else 1.0
    return {k: v * scale for k, v in delta.items()}, norm


@dataclass
class AdaptiveClip:
    """Quantile-based clipping bound (Andrew et al. 2021, "Differentially private learning
    with adaptive clipping"), as Flower implements it server-side: each client contributes the
    bit "my update's norm ≤ C"; the count of set bits gets Gaussian noise of standard deviation
    `count_stddev`; then C ← C · exp(−η_C (b̄ − γ)) with b̄ the noised fraction, γ the target
    quantile and η_C the clip learning rate."""

    bound: float
    target_quantile: float = 0.5
    learning_rate: float = 0.2
    count_stddev: float = 0.0

    def update(self, norms: list[float], rng: np.random.Generator) -> float:
        """Moves the bound after a round whose updates had these norms; returns the new one."""
        if not norms:
            return self.bound
        bits = sum(1 for n in norms if n <= self.bound)
        noised = float(rng.normal(bits, self.count_stddev)) if self.count_stddev > 0 else bits
        fraction = noised / len(norms)
        self.bound *= math.exp(-self.learning_rate * (fraction - self.target_quantile))
        return self.bound


def adaptive_noise_multiplier(z: float, count_stddev: float) -> float | None:
    """The noise multiplier the model's sum needs when the clipped count is released too
    (Andrew et al., Theorem 1; Flower's `_compute_noise_multiplier`):
    z_Δ = (z⁻² − (2σ_b)⁻²)^(−1/2) ≥ z. The pair (z_Δ on the sum, σ_b on the count) is as
    private as one Gaussian mechanism with multiplier z, which is what the accountant is told.
    Needs 2σ_b > z; None otherwise."""
    if count_stddev <= 0:
        return z
    rest = z**-2 - (2 * count_stddev) ** -2
    return float(rest**-0.5) if rest > 0 else None
