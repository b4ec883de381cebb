"""Robust aggregators for when some members' updates may be faulty or hostile: coordinate-wise
median, trimmed mean (Yin et al. 2018), Krum and Multi-Krum (Blanchard et al. 2017). They need
every update of the round at once."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from concord.federation.parameters import Parameters
from concord.federation.strategies import aggregate
from concord.federation.strategies.base import ClientUpdate, Strategy
from concord.federation.strategies.whole import EXCLUDED, Outcome


def _stacks(results: Iterable[ClientUpdate]) -> dict[str, np.ndarray]:
    items = list(results)
    return {k: np.stack([r.parameters[k] for r in items]) for k in items[0].parameters}


class Median(Strategy):
    name = "median"
    needs_all_updates = True

    def combine(self, results: Iterable[ClientUpdate]) -> Parameters:
        return {k: aggregate.coordinate_median(s) for k, s in _stacks(results).items()}


class TrimmedMean(Strategy):
    name = "trimmed-mean"
    needs_all_updates = True

    def combine(self, results: Iterable[ClientUpdate]) -> Parameters:
        beta = float(self.params.get("beta", 0.1))
        return {k: aggregate.trimmed_mean(s, beta) for k, s in _stacks(results).items()}


class Krum(Strategy):
    name = "krum"
    needs_all_updates = True
    keep = 1

    def combine(self, results: Iterable[ClientUpdate]) -> Parameters:
        items = list(results)
        names = list(items[0].parameters)
        flat = np.stack(
            [np.concatenate([r.parameters[k].ravel() for k in names]) for r in items]
        )  # (C, P)
        f = int(self.params.get("byzantine", 1))
        m = int(self.params.get("keep", self.keep))
        picked = aggregate.krum_choice(flat, f, m)
        chosen = flat[picked].mean(axis=0)
        # What each update came to, for the hub's per-member record.
        self.outcomes = [
            Outcome() if i in picked else Outcome(EXCLUDED, "krum-not-chosen", {"keep": m})
            for i in range(len(items))
        ]
        out, offset = {}, 0
        for k in names:
            size = items[0].parameters[k].size
            out[k] = chosen[offset : offset + size].reshape(items[0].parameters[k].shape)
            offset += size
        return out


class MultiKrum(Krum):
    name = "multi-krum"
    keep = 3
