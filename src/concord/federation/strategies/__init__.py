"""Aggregation strategies, one module per family; `make_strategy` builds one from a job spec."""

from __future__ import annotations

from concord.federation.strategies.base import ClientUpdate, Strategy
from concord.federation.strategies.fedavg import FedAvg, FedProx
from concord.federation.strategies.fedopt import FedAdagrad, FedAdam, FedAvgM, FedYogi
from concord.federation.strategies.robust import Krum, Median, MultiKrum, TrimmedMean
from concord.governance.jobspec import StrategySpec

REGISTRY: dict[str, type[Strategy]] = {
    s.name: s
    for s in (
        FedAvg,
        FedAvgM,
        FedProx,
        FedAdagrad,
        FedAdam,
        FedYogi,
        Median,
        TrimmedMean,
        Krum,
        MultiKrum,
    )
}


def make_strategy(spec: StrategySpec) -> Strategy:
    return REGISTRY[spec.name](**{k: float(v) for k, v in spec.params.items()})


__all__ = ["REGISTRY", "ClientUpdate", "Strategy", "make_strategy"]
