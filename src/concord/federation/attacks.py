"""Crafted updates from members who cheat, for measuring the robust rules: in the simulator
(`concord simulate --attack`), and in `concord node` only behind an option for tests.

An attack works in update space: Δ = (model after local training − the global model), flattened.
Colluding attackers are assumed to see the honest updates of the round (their mean and
coordinate-wise standard deviation), the strong threat model of the papers below:

- sign-flip: −Δ of its own honest training;
- scaling: λ·Δ (`boost`, default n/m: enough to outweigh the honest mean under FedAvg);
- noise: Gaussian N(0, σ²) in every coordinate instead of an update (`sigma`, default 0.1);
- label-flip: data poisoning: it trains honestly on labels y ↦ 9 − y (set up in the data);
- alie (Baruch et al. 2019, "A little is enough"): μ − z·σ per coordinate, with
  s = ⌊n/2 + 1⌋ − m and z = Φ⁻¹((n − s)/n);
- ipm (Xie et al. 2020, inner-product manipulation): −ε·μ (`epsilon`, default 0.5);
- min-max / min-sum (Shejwalkar & Houmansadr 2021): μ + γ·p with p = −σ (or −μ/‖μ‖, −sign μ),
  γ the largest found by binary search such that the crafted update's largest distance to an
  honest update (min-max), or its sum of squared distances (min-sum), stays within the largest
  such figure among the honest updates themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np
from numpy.typing import NDArray

from concord.errors import N_, Invalid
from concord.federation.parameters import Parameters

F = NDArray[np.float64]

ATTACKS = (
    "sign-flip",
    "scaling",
    "noise",
    "label-flip",
    "alie",
    "ipm",
    "min-max",
    "min-sum",
)


class UnknownAttack(Invalid):
    code = "federation.unknown_attack"
    message = N_("No attack “{attack}”; these exist: {attacks}.")


def alie_z(n: int, m: int) -> float:
    """Baruch et al. 2019: the number of honest updates a crafted one must look like, s, and
    the matching z so that it stays within the honest spread: z = Φ⁻¹((n − s)/n)."""
    s = n // 2 + 1 - m
    p = (n - s) / n
    p = min(max(p, 1e-6), 1 - 1e-6)
    return NormalDist().inv_cdf(p)


def alie(honest: F, n: int, m: int) -> F:
    return np.asarray(honest.mean(axis=0) - alie_z(n, m) * honest.std(axis=0), dtype=np.float64)


def ipm(honest: F, epsilon: float = 0.5) -> F:
    return np.asarray(-epsilon * honest.mean(axis=0), dtype=np.float64)


def _direction(honest: F, kind: str) -> F:
    mu = honest.mean(axis=0)
    if kind == "unit":
        return np.asarray(-mu / max(float(np.linalg.norm(mu)), 1e-12), dtype=np.float64)
    if kind == "sign":
        return np.asarray(-np.sign(mu), dtype=np.float64)
    return np.asarray(-honest.std(axis=0), dtype=np.float64)


def _pairwise_sq(honest: F) -> F:
    sq = (honest**2).sum(axis=1)
    return np.asarray(
        np.maximum(sq[:, None] + sq[None, :] - 2 * honest @ honest.T, 0.0), dtype=np.float64
    )  # (H, H)


def min_max_or_sum(
    honest: F, objective: str, direction: str = "std", gamma: float = 10.0, tolerance: float = 1e-5
) -> F:
    """Shejwalkar & Houmansadr 2021, Algorithm 1: binary search on γ for μ + γ·p."""
    mu = honest.mean(axis=0)
    p = _direction(honest, direction)
    d2 = _pairwise_sq(honest)
    limit = d2.max() if objective == "min-max" else d2.sum(axis=1).max()

    def fits(g: float) -> bool:
        crafted = mu + g * p
        dist = ((honest - crafted) ** 2).sum(axis=1)
        return bool((dist.max() if objective == "min-max" else dist.sum()) <= limit)

    step, found = gamma / 2, 0.0
    while abs(step) > tolerance:
        if fits(gamma):
            found = gamma
            gamma += step
        else:
            gamma -= step
        step /= 2
    return np.asarray(mu + found * p, dtype=np.float64)


@dataclass
class Attack:
    """Who cheats and how; `craft` replaces the malicious members' updates of a round."""

    name: str
    malicious: frozenset[str]
    params: dict[str, float] = field(default_factory=dict)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.name not in ATTACKS:
            raise UnknownAttack(attack=self.name, attacks=", ".join(ATTACKS))

    @property
    def poisons_data(self) -> bool:
        return self.name == "label-flip"

    def craft(self, own: Sequence[F], honest: F, n: int, round_number: int = 0) -> list[F]:
        """The crafted updates of the `len(own)` attackers among `n` updates this round, from
        their own honest updates and the round's honest ones `honest` (H, P)."""
        m = len(own)
        if m == 0:
            return []
        if self.name in ("label-flip",):
            return list(own)
        if self.name == "sign-flip":
            return [-x for x in own]
        if self.name == "scaling":
            boost = float(self.params.get("boost", n / m))
            return [boost * x for x in own]
        if self.name == "noise":
            rng = np.random.default_rng([self.seed, round_number])
            sigma = float(self.params.get("sigma", 0.1))
            return [rng.normal(0.0, sigma, size=x.shape) for x in own]
        if len(honest) == 0:  # nothing to imitate: fall back to the attackers' own mean
            honest = np.stack(list(own))
        if self.name == "alie":
            crafted = alie(honest, n, m)
        elif self.name == "ipm":
            crafted = ipm(honest, float(self.params.get("epsilon", 0.5)))
        else:
            crafted = min_max_or_sum(honest, self.name)
        return [crafted.copy() for _ in own]


def choose_malicious(clients: int, fraction: float, seed: int = 0) -> frozenset[str]:
    """A seeded ⌈fraction × clients⌉ of the clients, the same every round."""
    count = int(np.ceil(fraction * clients - 1e-9))
    order = np.random.default_rng([seed, 15]).permutation(clients)
    return frozenset(str(int(c)) for c in order[:count])


def flip_labels(y: NDArray[np.int64], classes: int = 10) -> NDArray[np.int64]:
    return (classes - 1 - y).astype(y.dtype)


# What a lone cheating node can do without seeing the others' updates (`concord node --attack`,
# for tests only): the attacks that need the round's honest updates are simulator-only.
LONE_ATTACKS = ("sign-flip", "scaling", "noise")


def craft_own(name: str, start: Parameters, trained: Parameters, boost: float = 10.0) -> Parameters:
    """A node's own update turned into a crafted one (model = start + crafted Δ)."""
    if name not in LONE_ATTACKS:
        raise UnknownAttack(attack=name, attacks=", ".join(LONE_ATTACKS))
    attack = Attack(name, frozenset(), {"boost": boost})
    out: Parameters = {}
    for k, v in trained.items():
        delta = v.astype(np.float64) - start[k].astype(np.float64)
        (made,) = attack.craft([delta.ravel()], np.zeros((0, delta.size)), 1)
        out[k] = (start[k].astype(np.float64) + made.reshape(v.shape)).astype(v.dtype)
    return out
