"""Aggregation strategies, one module per family; `make_strategy` builds one from a job spec."""

from __future__ import annotations

from concord.federation.strategies.base import ClientUpdate, Strategy
from concord.federation.strategies.bucketing import Bucketing
from concord.federation.strategies.centred_clipping import CentredClipping
from concord.federation.strategies.fedavg import FedAvg, FedProx
from concord.federation.strategies.fedopt import FedAdagrad, FedAdam, FedAvgM, FedYogi
from concord.federation.strategies.geomedian import GeometricMedian
from concord.federation.strategies.norm_bound import NormBound
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
        GeometricMedian,
        CentredClipping,
        NormBound,
    )
}


def make_strategy(spec: StrategySpec, seed: int = 0) -> Strategy:
    """The spec's strategy; with `bucketing: s`, wrapped so that it sees bucket means."""
    strategy = REGISTRY[spec.name](**{k: float(v) for k, v in spec.params.items()})
    if spec.bucketing:
        return Bucketing(strategy, spec.bucketing, seed)
    return strategy


__all__ = ["REGISTRY", "ClientUpdate", "Strategy", "make_strategy"]
