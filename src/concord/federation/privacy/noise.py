"""Gaussian noise for the sum of clipped updates.

Central noise: the hub adds N(0, σ²) with σ = z·C to the sum. Distributed noise: each of the n
chosen nodes adds its share N(0, σ²/n) to its own clipped update, so the sum carries N(0, σ²)
when all of them deliver, and the hub (under secure aggregation) never holds a noiseless sum.

The generator must be unpredictable to whoever sees the result: `fresh_generator` draws its
seed from the operating system, never from the job's number or the round.
"""

from __future__ import annotations

import math
import secrets

import numpy as np

from concord.federation.parameters import Parameters


def fresh_generator() -> np.random.Generator:
    return np.random.default_rng(secrets.randbits(128))


def gaussian_like(shape_of: Parameters, std: float, rng: np.random.Generator) -> Parameters:
    return {k: rng.normal(0.0, std, size=v.shape) for k, v in shape_of.items()}


def add_gaussian(values: Parameters, std: float, rng: np.random.Generator) -> Parameters:
    """`values` plus independent N(0, std²) in every coordinate (float64)."""
    if std <= 0:
        return {k: v.astype(np.float64) for k, v in values.items()}
    return {k: v.astype(np.float64) + rng.normal(0.0, std, size=v.shape) for k, v in values.items()}


def central_std(noise_multiplier: float, clip_norm: float) -> float:
    return noise_multiplier * clip_norm


def share_std(noise_multiplier: float, clip_norm: float, nodes: int) -> float:
    """One node's share of the noise when `nodes` nodes each add theirs."""
    return noise_multiplier * clip_norm / math.sqrt(max(nodes, 1))
