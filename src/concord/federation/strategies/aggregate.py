"""Aggregation functions: pure, typed and vectorised; each takes the clients' tensors of one
name stacked along axis 0 (shape (C, …)) or streams them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from concord.federation.parameters import Parameters

F = NDArray[Any]


def weighted_mean(stack: F, weights: F) -> F:
    """Σ_c w_c x_c / Σ_c w_c over axis 0."""
    w = np.asarray(weights, dtype=np.float64)
    return np.tensordot(w / w.sum(), stack.astype(np.float64), axes=1)


def weighted_mean_stream(updates: Iterable[tuple[Parameters, float]]) -> tuple[Parameters, float]:
    """The weighted mean of updates read one at a time: memory O(model), not O(clients × model)."""
    total: dict[str, F] = {}
    weight_sum = 0.0
    for params, weight in updates:
        weight_sum += weight
        for name, value in params.items():
            scaled = value.astype(np.float64) * weight
            if name in total:
                total[name] += scaled
            else:
                total[name] = scaled
    if weight_sum <= 0:
        raise ValueError("no examples to aggregate")
    return {k: v / weight_sum for k, v in total.items()}, weight_sum


class TensorSource(Protocol):
    """An update that can be read a piece at a time (a `TensorFile`, or one in memory)."""

    def read(self, name: str, start: int, stop: int) -> F: ...


def weighted_mean_pieces(
    sources: Sequence[tuple[TensorSource, float]],
    shapes: dict[str, tuple[tuple[int, ...], np.dtype[Any]]],
    chunk: int = 1 << 16,
) -> Parameters:
    """The weighted mean of updates read piece by piece: for each `chunk` of each tensor, every
    update's piece is added in float64, and the result is stored in the model's dtype. Memory:
    one model (the result) and two chunks, whatever the number of updates; the sum runs in the
    same order as `weighted_mean_stream`, so both give the same numbers."""
    weight_sum = float(sum(w for _s, w in sources))
    if weight_sum <= 0:
        raise ValueError("no examples to aggregate")
    out: Parameters = {}
    for name, (shape, dtype) in shapes.items():
        result = np.empty(shape, dtype=dtype)
        flat = result.reshape(-1)  # a view: writing it fills `result`
        for start in range(0, flat.size, chunk):
            stop = min(start + chunk, flat.size)
            total = np.zeros(stop - start, dtype=np.float64)  # (chunk,)
            scaled = np.empty_like(total)
            for source, weight in sources:
                np.multiply(source.read(name, start, stop), weight, out=scaled, dtype=np.float64)
                total += scaled
            total /= weight_sum
            flat[start:stop] = total
        out[name] = result
    return out


def coordinate_median(stack: F) -> F:
    return np.median(stack, axis=0)


def trimmed_mean(stack: F, beta: float) -> F:
    """Drops the β fraction of highest and of lowest values per coordinate, then averages."""
    c = stack.shape[0]
    k = int(np.floor(beta * c))
    if 2 * k >= c:
        raise ValueError("trimming would drop every client")
    ordered = np.sort(stack, axis=0)
    return np.asarray(ordered[k : c - k].mean(axis=0))


def krum_scores(flat: F, f: int) -> F:
    """Krum (Blanchard et al. 2017): each client's sum of squared distances to its C − f − 2
    nearest neighbours. `flat` is (C, P)."""
    c = flat.shape[0]
    sq = (flat**2).sum(axis=1)
    d = sq[:, None] + sq[None, :] - 2 * flat @ flat.T  # (C, C)
    np.fill_diagonal(d, np.inf)
    m = max(1, c - f - 2)
    return np.asarray(np.sort(d, axis=1)[:, :m].sum(axis=1))


def multi_krum(flat: F, f: int, m: int) -> F:
    """The mean of the m clients with the best Krum scores (m = 1 is Krum)."""
    chosen = np.argsort(krum_scores(flat, f))[:m]
    return np.asarray(flat[chosen].mean(axis=0))
