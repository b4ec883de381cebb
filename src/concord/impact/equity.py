"""Equity measures: the Gini coefficient and shares against membership."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def gini_plain(values: Sequence[float]) -> float:
    """G = Σ_i Σ_j |x_i − x_j| / (2 n² μ): the definition, O(n²), kept to test the fast one."""
    n = len(values)
    total = sum(values)
    if n == 0 or total == 0:
        return 0.0
    mean = total / n
    return sum(abs(a - b) for a in values for b in values) / (2 * n * n * mean)


def gini(values: Sequence[float]) -> float:
    """The same from sorted values in O(n log n): G = Σ (2i − n − 1) x_(i) / (n Σ x)."""
    x = np.sort(np.asarray(values, dtype=float))  # (n,)
    n = x.size
    if n == 0 or x.sum() == 0:
        return 0.0
    i = np.arange(1, n + 1)
    return float(((2 * i - n - 1) * x).sum() / (n * x.sum()))


def share(part: float, whole: float) -> float:
    return part / whole if whole else 0.0
