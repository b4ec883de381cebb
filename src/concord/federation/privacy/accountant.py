"""ε from dp-accounting: the Poisson-subsampled Gaussian mechanism composed over rounds.

Each round is one event: every client takes part with probability q (clients per round ÷
clients), and the sum of clipped updates gets Gaussian noise of multiplier z. The hub samples a
fixed number of clients without replacement; Poisson sampling at the same rate is the standard
approximation for accounting (as in DP-FedAvg and TensorFlow Federated), stated as such.
Rounds may differ (a round where fewer nodes added their noise share has a smaller z): each
round's own (q, z) goes into the composition.

Two accountants: RDP (Rényi, Mironov 2017; the default, fast) and PLD (privacy loss
distributions; tighter, slower).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import dp_accounting
from dp_accounting import pld, rdp

# Integer orders (dp-accounting warns that fractional ones below 2 do not converge for small
# sampling rates and z, and they only matter for ε far above any budget a project would set).
RDP_ORDERS = [*range(2, 64), 80, 128, 256, 512]
PLD_INTERVAL = 1e-3


def default_delta(clients: int) -> float:
    """δ = 1/N^1.1 for N clients: below 1/N, as δ must be for the guarantee to mean anything."""
    return 1.0 / max(clients, 2) ** 1.1


def round_event(sampling_rate: float, noise_multiplier: float) -> dp_accounting.DpEvent:
    gaussian = dp_accounting.GaussianDpEvent(noise_multiplier)
    if sampling_rate >= 1.0:
        return gaussian
    return dp_accounting.PoissonSampledDpEvent(sampling_rate, gaussian)


def composed(steps: Sequence[tuple[float, float]]) -> dp_accounting.DpEvent:
    """The rounds' events, equal ones self-composed (so a thousand rounds cost one event)."""
    counts = Counter((float(q), float(z)) for q, z in steps)
    return dp_accounting.ComposedDpEvent(
        [dp_accounting.SelfComposedDpEvent(round_event(q, z), n) for (q, z), n in counts.items()]
    )


def epsilon(steps: Sequence[tuple[float, float]], delta: float, accountant: str = "rdp") -> float:
    """ε after these rounds, each (sampling rate, noise multiplier); inf if any z is 0."""
    if not steps:
        return 0.0
    if any(z <= 0 for _q, z in steps):
        return math.inf
    event = composed(steps)
    if accountant == "pld":
        account: dp_accounting.PrivacyAccountant = pld.PLDAccountant(
            value_discretization_interval=PLD_INTERVAL
        )
    elif accountant == "rdp":
        account = rdp.RdpAccountant(RDP_ORDERS)
    else:
        raise ValueError(f"unknown accountant {accountant}")
    account.compose(event)
    return float(account.get_epsilon(delta))


def record_epsilon(
    rounds: int, examples: int, config: dict[str, Any], noise_multiplier: float, delta: float
) -> float:
    """Record-level ε of a member who trained `rounds` rounds on `examples` records."""
    batch = int(config.get("batch_size", 10)) or examples
    batch = min(batch, examples)
    steps = int(config.get("epochs", 1)) * math.ceil(examples / max(batch, 1))
    q = batch / max(examples, 1)
    return epsilon([(q, noise_multiplier)] * (rounds * steps), delta)
