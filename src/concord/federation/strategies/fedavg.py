"""FedAvg (McMahan et al. 2017): the example-weighted mean of the clients' models."""

from __future__ import annotations

from typing import Any

from concord.federation.strategies.base import Strategy


class FedAvg(Strategy):
    name = "fedavg"


class FedProx(Strategy):
    """FedProx (Li et al. 2020): FedAvg's server; the proximal term μ is applied by the task's
    local training (`proximal_mu` in the round's configuration)."""

    name = "fedprox"

    def configure(self, round_number: int, local: dict[str, Any]) -> dict[str, Any]:
        mu = float(self.params.get("mu", float(local.get("proximal_mu") or 0.01)))
        return {**local, "round": round_number, "proximal_mu": mu}
