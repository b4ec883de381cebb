"""DP-FedAvg as a stage of the round (McMahan et al. 2018, "Learning differentially private
recurrent language models"), at the hub or in the simulator.

Each update becomes its delta from the round's global model, clipped to L2 norm C; the clipped
deltas are summed, the sum gets Gaussian noise of standard deviation σ = z·C, and the result is
divided by the number of clients CHOSEN for the round (not by their examples, and not by how
many delivered): every client weighs the same, so that one client's influence on the mean is
at most C/m whatever it claims about its data. That noised mean delta, added to the global
model, is what the strategy's server update receives — a server optimiser (FedAdam…) then works
on it as on any combined model (post-processing keeps the guarantee). The strategy's own
`combine` (example-weighted mean, median, Krum) is not used under DP.

Two ways to add the noise:
- central: the hub clips (fixed C, or adaptive C after Andrew et al. 2021) and adds N(0, σ²);
- distributed: each of the m chosen nodes clips its own delta and adds N(0, σ²/m); the hub only
  sums. The hub cannot check the clipping, but it measures the noise: a delta of dimension d
  carrying its share has ‖Δ‖² ≈ ‖clipped‖² + d·σ²/m, far above C² when d is large, so an update
  without its share is detected and the round is accounted with the noise actually present
  (z_eff = z·√(noised/m)); with none, the round has no DP and nothing claims it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from concord.errors import N_, Invalid
from concord.federation.parameters import Parameters
from concord.federation.privacy import accountant
from concord.federation.privacy.clipping import (
    AdaptiveClip,
    adaptive_noise_multiplier,
    clip,
    difference,
    l2_norm,
)
from concord.federation.privacy.noise import add_gaussian, central_std, share_std
from concord.governance.jobspec import DifferentialPrivacy


class CountNoiseTooSmall(Invalid):
    code = "federation.dp_count_noise"
    message = N_(
        "Adaptive clipping needs the clipped count's noise above half the noise multiplier: "
        "σ_b = {stddev} with z = {z}. Raise clipped_count_stddev or lower z."
    )


@dataclass(frozen=True)
class Settings:
    """A job's client-level DP, resolved: the spec's choices with their defaults applied."""

    budget: float
    delta: float
    clip_norm: float
    noise_multiplier: float
    noise: str = "central"  # or "distributed"
    adaptive: bool = False
    target_quantile: float = 0.5
    clip_learning_rate: float = 0.2
    clipped_count_stddev: float = 0.0
    accountant: str = "rdp"

    @classmethod
    def from_spec(cls, dp: DifferentialPrivacy, clients: int, per_round: int) -> Settings:
        """`clients`: everyone who may take part (for δ = 1/N^1.1 when the spec gives none);
        `per_round`: clients chosen per round (Flower's default clipped-count stddev is m/20)."""
        count_stddev = dp.clipped_count_stddev
        if dp.adaptive and count_stddev is None:
            count_stddev = per_round / 20
        settings = cls(
            budget=dp.epsilon,
            delta=dp.delta if dp.delta is not None else accountant.default_delta(clients),
            clip_norm=dp.clip_norm,
            noise_multiplier=dp.z,
            noise=dp.noise,
            adaptive=dp.adaptive,
            target_quantile=dp.target_quantile,
            clip_learning_rate=dp.clip_learning_rate,
            clipped_count_stddev=float(count_stddev or 0.0) if dp.adaptive else 0.0,
            accountant=dp.accountant,
        )
        if settings.adaptive and settings.clipped_count_stddev <= 0:
            raise CountNoiseTooSmall(stddev=0, z=settings.noise_multiplier)
        settings.sum_noise_multiplier  # noqa: B018  (refuses impossible settings now)
        return settings

    @property
    def sum_noise_multiplier(self) -> float:
        """The multiplier of the noise on the sum (more than z when adaptive clipping also
        releases the noised clipped count, so that both together cost what z alone would)."""
        if not self.adaptive:
            return self.noise_multiplier
        z = adaptive_noise_multiplier(self.noise_multiplier, self.clipped_count_stddev)
        if z is None:
            raise CountNoiseTooSmall(stddev=self.clipped_count_stddev, z=self.noise_multiplier)
        return z


@dataclass
class RoundPrivacy:
    """What one round applied and what it cost: stored with the round, logged, shown."""

    mode: str
    clip_norm: float  # C used this round
    next_clip_norm: float  # C for the next round (differs when adaptive)
    noise_multiplier: float  # z actually present on this round's sum (accounted)
    noise_std: float  # σ on the sum
    sampling_rate: float
    chosen: int
    received: int
    noised: int  # updates that carried noise (central: all; distributed: measured)
    clipped: int  # updates whose norm exceeded C (central) — measured at the hub
    epsilon: float = 0.0  # cumulative, after this round
    delta: float = 0.0
    accountant: str = "rdp"
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["epsilon"] = _finite(self.epsilon)
        return out


def _finite(value: float) -> float | None:
    return round(value, 6) if math.isfinite(value) else None


def noise_present(delta: Parameters, bound: float, share: float) -> bool:
    """Whether a node's delta carries its noise share: its squared norm minus at most C² (the
    clipped part) must hold at least half the expected d·share² (a χ²_d below half its mean is
    beyond 8 standard deviations when d ≥ 512, and at 3.5 when d = 100)."""
    d = sum(v.size for v in delta.values())
    return l2_norm(delta) ** 2 - bound**2 >= 0.5 * d * share**2


def private_mean(
    global_params: Parameters,
    updates: Iterable[Parameters],
    settings: Settings,
    *,
    clip_norm: float,
    chosen: int,
    sampling_rate: float,
    rng: np.random.Generator,
) -> tuple[Parameters, RoundPrivacy]:
    """The noised mean delta of the round's updates and what was applied. The updates are
    read one at a time (memory O(model))."""
    total: Parameters = {k: np.zeros(v.shape, dtype=np.float64) for k, v in global_params.items()}
    norms: list[float] = []
    received = noised = clipped = 0
    share = share_std(settings.noise_multiplier, clip_norm, chosen)
    for params in updates:
        received += 1
        delta = difference(params, global_params)
        if settings.noise == "distributed":
            # The node clipped and noised it; the hub only checks that the noise is there.
            norms.append(l2_norm(delta))
            if noise_present(delta, clip_norm, share):
                noised += 1
        else:
            delta, norm = clip(delta, clip_norm)
            norms.append(norm)
            clipped += norm > clip_norm
            noised += 1
        for k in total:
            total[k] += delta[k]
    if settings.noise == "distributed":
        z = settings.noise_multiplier * math.sqrt(noised / max(chosen, 1))
        std = share * math.sqrt(noised)
    else:
        z = settings.sum_noise_multiplier if received else 0.0
        std = central_std(z, clip_norm)
        total = add_gaussian(total, std, rng)
        z = settings.noise_multiplier if received else 0.0  # with the count's noise: z overall
    mean = {k: v / max(chosen, 1) for k, v in total.items()}
    next_clip = clip_norm
    if settings.adaptive and settings.noise == "central":
        rule = AdaptiveClip(
            clip_norm,
            settings.target_quantile,
            settings.clip_learning_rate,
            settings.clipped_count_stddev,
        )
        next_clip = rule.update(norms, rng)
    record = RoundPrivacy(
        mode=settings.noise,
        clip_norm=clip_norm,
        next_clip_norm=next_clip,
        noise_multiplier=z,
        noise_std=std,
        sampling_rate=sampling_rate,
        chosen=chosen,
        received=received,
        noised=noised,
        clipped=int(clipped),
        delta=settings.delta,
        accountant=settings.accountant,
    )
    return mean, record


def apply_mean(global_params: Parameters, mean_delta: Parameters) -> Parameters:
    """The combined model a strategy's server update receives: global + noised mean delta."""
    return {
        k: (global_params[k].astype(np.float64) + mean_delta[k]).astype(global_params[k].dtype)
        for k in global_params
    }


def privatise(
    params: Parameters,
    global_params: Parameters,
    *,
    clip_norm: float,
    noise_std: float,
    rng: np.random.Generator,
) -> Parameters:
    """What a node does in distributed mode: clip its delta to C, add its noise share, and
    send global + that (in the model's dtypes)."""
    delta, _norm = clip(difference(params, global_params), clip_norm)
    return apply_mean(global_params, add_gaussian(delta, noise_std, rng))


def achieved(records: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    """What a run achieved, from its closed rounds' records in order; None unless EVERY round
    applied DP with finite ε (one round without it and the guarantee is gone)."""
    if not records or any(not r or r.get("epsilon") is None for r in records):
        return None
    last = records[-1]
    assert last is not None
    return {
        "epsilon": last["epsilon"],
        "delta": last["delta"],
        "rounds": len(records),
        "sampling_rate": max(float(r["sampling_rate"]) for r in records if r),
        "noise_multiplier": min(float(r["noise_multiplier"]) for r in records if r),
        "clip_norm": last["next_clip_norm"],
        "mode": last["mode"],
        "accountant": last["accountant"],
        "level": "client",
    }


def account(
    previous: list[tuple[float, float]], record: RoundPrivacy, settings: Settings
) -> RoundPrivacy:
    """Puts the cumulative ε after this round into the record."""
    steps = [*previous, (record.sampling_rate, record.noise_multiplier)]
    record.epsilon = accountant.epsilon(steps, settings.delta, settings.accountant)
    return record


def next_epsilon(
    previous: list[tuple[float, float]], sampling_rate: float, settings: Settings
) -> float:
    """ε if one more round ran as planned (z nominal): the budget check before a round."""
    return accountant.epsilon(
        [*previous, (sampling_rate, settings.noise_multiplier)], settings.delta, settings.accountant
    )


def steps_of(records: list[dict[str, Any] | None]) -> list[tuple[float, float]]:
    return [(float(r["sampling_rate"]), float(r["noise_multiplier"])) for r in records if r]
