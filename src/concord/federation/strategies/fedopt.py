"""Server optimisers: FedAvgM (Hsu et al. 2019) and FedAdagrad / FedAdam / FedYogi
(Reddi et al. 2021, Algorithm 2). With Δ = x̄ − x (the mean update as a pseudo-gradient):

    FedAvgM:   m ← β m + Δ;                         x ← x + η m
    FedAdagrad v ← v + Δ²;                          x ← x + η m / (√v + τ)
    FedAdam:   m ← β₁m + (1−β₁)Δ; v ← β₂v + (1−β₂)Δ²; x ← x + η m / (√v + τ)
    FedYogi:   v ← v − (1−β₂) Δ² sign(v − Δ²)        (m as FedAdam)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from concord.federation.parameters import Parameters
from concord.federation.strategies.base import Strategy


class FedAvgM(Strategy):
    name = "fedavgm"

    def __init__(self, **params: float) -> None:
        super().__init__(**params)
        self.momentum: dict[str, NDArray[Any]] = {}

    def server_update(self, global_params: Parameters, combined: Parameters) -> Parameters:
        lr = float(self.params.get("server_learning_rate", 1.0))
        beta = float(self.params.get("momentum", 0.9))
        out = {}
        for k, x in global_params.items():
            delta = combined[k] - x
            self.momentum[k] = beta * self.momentum.get(k, 0.0) + delta
            out[k] = x + lr * self.momentum[k]
        return out

    def state(self) -> Parameters:
        return {f"momentum/{k}": v for k, v in self.momentum.items()}

    def load_state(self, state: Parameters) -> None:
        self.momentum = _part(state, "momentum/")


class FedOpt(Strategy):
    name = "fedopt"
    variant = "adam"

    def __init__(self, **params: float) -> None:
        super().__init__(**params)
        self.m: dict[str, NDArray[Any]] = {}
        self.v: dict[str, NDArray[Any]] = {}

    def server_update(self, global_params: Parameters, combined: Parameters) -> Parameters:
        eta = float(self.params.get("server_learning_rate", 0.1))
        beta1 = float(self.params.get("beta_1", 0.9))
        beta2 = float(self.params.get("beta_2", 0.99))
        tau = float(self.params.get("tau", 1e-3))
        out = {}
        for k, x in global_params.items():
            delta = combined[k].astype(np.float64) - x
            m = self.m.get(k, np.zeros_like(delta))
            v = self.v.get(k, np.full_like(delta, tau**2))
            if self.variant == "adagrad":
                m = delta
                v = v + delta**2
            elif self.variant == "adam":
                m = beta1 * m + (1 - beta1) * delta
                v = beta2 * v + (1 - beta2) * delta**2
            else:  # yogi
                m = beta1 * m + (1 - beta1) * delta
                v = v - (1 - beta2) * delta**2 * np.sign(v - delta**2)
            self.m[k], self.v[k] = m, v
            out[k] = x + eta * m / (np.sqrt(v) + tau)
        return out

    def state(self) -> Parameters:
        return {
            **{f"m/{k}": v for k, v in self.m.items()},
            **{f"v/{k}": v for k, v in self.v.items()},
        }

    def load_state(self, state: Parameters) -> None:
        self.m, self.v = _part(state, "m/"), _part(state, "v/")


def _part(state: Parameters, prefix: str) -> dict[str, NDArray[Any]]:
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


class FedAdagrad(FedOpt):
    name = "fedadagrad"
    variant = "adagrad"


class FedAdam(FedOpt):
    name = "fedadam"
    variant = "adam"


class FedYogi(FedOpt):
    name = "fedyogi"
    variant = "yogi"
