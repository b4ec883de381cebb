"""The opinion map, after the published Polis method.

Notation (participants i, statements j):

    V[i, j] ∈ {-1 disagree, 0 pass, +1 agree}, or missing
    μ_j      = mean of the votes cast on statement j
    X[i, j]  = V[i, j] − μ_j where voted, 0 where missing    (mean imputation, then centring)

Mean imputation followed by centring leaves missing cells at exactly zero, so X keeps the
sparsity of the votes: nothing dense of size participants × statements is ever built.

1. PCA to two dimensions by power iteration (block power / subspace iteration with QR) on
   Xᵀ X, using only sparse mat-vecs, as Polis does it.
2. Each participant's projection p_i = X_i · [c₁ c₂], scaled by sqrt(n_statements / n_voted_i)
   so that people who voted on few statements are not pulled to the centre.
3. Clustering as Polis: k-means into (up to) 100 base clusters, then k-means over the base
   cluster centres (weighted by their size) for k = 2..5, keeping the k with the best
   silhouette. Participants inherit their base cluster's group.
4. Per group and statement: smoothed agree/disagree shares pa = (A+1)/(S+2); representative
   statements by the Polis repness (ra = pa_in / pa_out, two z-tests); consensus statements;
   group-informed consensus GIC_j = Π_g (A_gj + 1)/(S_gj + 2).

Cost, measured (see benchmarks/opinion.py): the votes are held once as CSR with float32 values
(X is float32 too: PCA agrees with float64 to ~1e-6, far below anything the map shows), and
the k-means is our own NumPy code on 2-D points: importing scikit-learn for it cost ~145 MB and
seconds, more than the whole computation.

`pca_plain` is the same PCA written with dense NumPy and an eigen-decomposition, kept beside
the fast one; a test checks that they agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import sparse

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Float32Array = npt.NDArray[np.float32]

MIN_VOTES = 7  # Polis clusters only participants with at least this many votes
BASE_CLUSTERS = 100
BASE_SAMPLE = 2_000  # distinct points the base k-means is fitted on (20 per centre)
BASE_ITERATIONS = 50
BASE_REFINE = 100_000  # distinct points the base centres are refined on (Polis: all of them)
REFINE_ITERATIONS = 10
COUNT_BLOCK = 1 << 20  # votes counted per block
GROUP_RESTARTS = 4  # k-means++ starts per k for the (tiny) group-level k-means
MAX_GROUPS = 5
PCA_TOLERANCE = 1e-5
Z_90 = 1.2816


@dataclass
class Repness:
    statement: int  # column index
    direction: str  # "agree" | "disagree"
    p_in: float  # smoothed share of the direction inside the group
    p_out: float  # same outside the group
    ratio: float


@dataclass
class OpinionMap:
    n_participants: int
    n_statements: int
    n_votes: int
    xy: FloatArray  # (n_participants, 2)
    groups: IntArray  # (n_participants,), -1 where not clustered (too few votes)
    k: int
    silhouette: float
    components: FloatArray  # (2, n_statements)
    agree: IntArray  # (k, n_statements) agree counts per group
    disagree: IntArray  # (k, n_statements)
    seen: IntArray  # (k, n_statements) votes cast per group, passes included
    gic: FloatArray  # (n_statements,) group-informed consensus
    repness: list[list[Repness]] = field(default_factory=list)
    consensus: list[int] = field(default_factory=list)  # statements every group agrees with


def tally(values: npt.NDArray[Any], length: int) -> IntArray:
    """np.bincount in blocks: bincount first copies int32 input to int64, which at ten
    million votes is an 80 MB spike for a 2 KB answer."""
    out = np.zeros(length, dtype=np.int64)
    for start in range(0, len(values), COUNT_BLOCK):
        out += np.bincount(values[start : start + COUNT_BLOCK], minlength=length)
    return out


def vote_matrix(
    rows: npt.NDArray[Any],
    cols: npt.NDArray[Any],
    votes: npt.NDArray[Any],
    shape: tuple[int, int],
    dtype: type[np.floating[Any]] = np.float32,
) -> sparse.csr_matrix:
    """V as a CSR matrix; its structure is the 'seen' mask, so no second matrix is kept.

    Each (row, col) pair must appear once (the caller keeps the latest vote). The CSR arrays
    are built directly: row pointers from the count of votes per row, and a stable sort by
    row only when the votes are not already grouped by participant. Going through COO sorts
    every row's columns and looks for duplicates, which took longer than the whole PCA.
    `cols` becomes V's column index array without a copy when it already has the index
    type; nothing here writes to it."""
    n, _m = shape
    rows = np.asarray(rows)
    cols = np.asarray(cols)
    votes = np.asarray(votes)
    index = np.int32 if len(rows) < 2**31 - 1 else np.int64
    indptr = np.zeros(n + 1, dtype=index)
    np.cumsum(tally(rows, n), out=indptr[1:])
    if len(rows) > 1 and bool(np.any(rows[1:] < rows[:-1])):  # not grouped by participant
        order = np.argsort(rows, kind="stable")
        cols, votes = cols[order], votes[order]
    data = np.sign(votes).astype(dtype)  # agree +1, disagree −1, pass 0, whatever the type
    indices = np.asarray(cols, dtype=index)
    return sparse.csr_matrix((data, indices, indptr), shape=shape, copy=False)


def centred(v: sparse.csr_matrix) -> tuple[sparse.csr_matrix, FloatArray]:
    """X = V − μ on voted cells only (V's value type, sharing V's structure), and μ."""
    n, m = v.shape
    counts = tally(v.indices, m)
    if n < 2**24:  # column sums of ±1 and 0 are exact integers in float32 up to 2²⁴
        sums = (v.T @ np.ones(n, dtype=v.dtype)).astype(np.float64)
    else:
        sums = np.bincount(v.indices, weights=v.data, minlength=m)
    mu = np.divide(sums, counts, out=np.zeros(m), where=counts > 0)
    means = mu.astype(v.dtype)
    data = np.empty_like(v.data)
    for start in range(0, v.nnz, COUNT_BLOCK):  # np.take copies int32 indices to int64
        block = slice(start, start + COUNT_BLOCK)
        np.take(means, v.indices[block], out=data[block])
    np.subtract(v.data, data, out=data)
    return sparse.csr_matrix((data, v.indices, v.indptr), shape=v.shape, copy=False), mu


def _times(x: sparse.csr_matrix, q: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """x @ q one column at a time: SciPy's single-vector product is ~4× faster per column
    than its multi-vector one (measured: 0.4 ms against 2.9 ms for two columns, 1M votes)."""
    out = np.empty((x.shape[0], q.shape[1]), dtype=x.dtype)
    for c in range(q.shape[1]):
        out[:, c] = x @ np.ascontiguousarray(q[:, c], dtype=x.dtype)
    return out


def power_pca(
    x: sparse.csr_matrix,
    n_components: int = 2,
    iterations: int = 200,
    tol: float = PCA_TOLERANCE,
    rows: npt.NDArray[np.bool_] | None = None,
) -> FloatArray:
    """Top principal axes of X by subspace iteration on Xᵀ X; (n_components, m).

    `rows` selects the participants the axes are fitted to (all if None): their products are
    masked rather than sliced out, which would copy the matrix."""
    m = x.shape[1]
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((m, n_components)))  # (m, c)
    xt = x.T  # a CSC view: no copy
    mask = None if rows is None else rows.astype(x.dtype)

    def fitted(q: FloatArray) -> npt.NDArray[Any]:
        y = _times(x, q)
        return y if mask is None else y * mask[:, None]

    change = np.inf
    for _ in range(iterations):
        q_next, _ = np.linalg.qr(_times(xt, fitted(q)).astype(np.float64))
        # the subspace has converged when the projection onto it no longer moves; in float32
        # it may stall just above `tol` at rounding level, so stalling also ends it
        previous, change = change, float(np.linalg.norm(q_next @ (q_next.T @ q) - q))
        q = q_next
        if change < tol or (change < 10 * tol and change > 0.9 * previous):
            break
    # order and orient the axes inside the subspace (Rayleigh-Ritz), for stable output
    y = fitted(q).astype(np.float64)
    _values, vectors = np.linalg.eigh(y.T @ y)  # (c, c)
    axes = (q @ vectors[:, ::-1]).T  # (c, m), largest first
    signs = np.sign(axes[np.arange(n_components), np.abs(axes).argmax(axis=1)])
    return np.asarray(axes * signs[:, None])


def project(x: sparse.csr_matrix, axes: FloatArray) -> FloatArray:
    """p_i = X_i · axes ᵀ · sqrt(n_statements / n_voted_i); (n, 2)."""
    n_voted = np.diff(x.indptr)
    scale = np.sqrt(x.shape[1] / np.maximum(n_voted, 1))
    return np.asarray(_times(x, axes.T).astype(np.float64) * scale[:, None])


def pca_plain(dense: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The reference PCA: `dense` holds votes with NaN for missing. Returns (axes, xy)."""
    seen = ~np.isnan(dense)
    mu = np.where(seen.any(axis=0), np.nanmean(np.where(seen, dense, np.nan), axis=0), 0.0)
    imputed = np.where(seen, dense, mu)  # mean imputation
    x = imputed - mu  # centring
    _values, vectors = np.linalg.eigh(x.T @ x)
    axes = vectors[:, ::-1][:, :2].T
    signs = np.sign(axes[np.arange(2), np.abs(axes).argmax(axis=1)])
    axes = axes * signs[:, None]
    scale = np.sqrt(dense.shape[1] / np.maximum(seen.sum(axis=1), 1))
    return axes, (x @ axes.T) * scale[:, None]


def nearest(
    points: Float32Array, centres: Float32Array, chunk: int = 4096
) -> tuple[IntArray, Float32Array]:
    """Index of and squared distance to each 2-D point's nearest centre, in chunks of rows.

    Written out per coordinate in float32, without BLAS: a (n × 2) · (2 × k) matrix product
    is too thin for BLAS to gain anything, and its threads spinning on a busy shared machine
    made it up to ten times slower in our measurements."""
    cx, cy = centres[:, 0], centres[:, 1]
    labels = np.empty(len(points), dtype=np.int64)
    distance = np.empty(len(points), dtype=np.float32)
    for start in range(0, len(points), chunk):
        p = points[start : start + chunk]
        d = p[:, 0:1] - cx
        np.square(d, out=d)
        e = p[:, 1:2] - cy
        np.square(e, out=e)
        d += e
        best = d.argmin(axis=1)
        labels[start : start + chunk] = best
        distance[start : start + chunk] = np.take_along_axis(d, best[:, None], axis=1)[:, 0]
    return labels, distance


def _plus_plus(
    points: Float32Array, weights: FloatArray, k: int, rng: np.random.Generator
) -> Float32Array:
    """Greedy weighted k-means++ seeding (as scikit-learn: 2 + log k candidates a step)."""
    trials = 2 + int(np.log(k))
    px, py = points[:, 0], points[:, 1]
    first = int(rng.choice(len(points), p=weights / weights.sum()))
    chosen = [first]
    closest = (px - px[first]) ** 2 + (py - py[first]) ** 2
    for _ in range(1, k):
        cumulative = np.cumsum(weights * closest)
        if cumulative[-1] <= 0:  # fewer distinct points than centres
            break
        picks = np.searchsorted(cumulative, rng.random(trials) * cumulative[-1], side="right")
        picks = np.minimum(picks, len(points) - 1)
        candidates = (px - px[picks, None]) ** 2 + (py - py[picks, None]) ** 2  # (trials, n)
        np.minimum(candidates, closest, out=candidates)
        best = int((candidates * weights).sum(axis=1).argmin())
        chosen.append(int(picks[best]))
        closest = candidates[best]
    return points[chosen].copy()


def lloyd(
    points: Float32Array, weights: FloatArray, centres: Float32Array, iterations: int
) -> tuple[Float32Array, IntArray, Float32Array]:
    """Weighted Lloyd iterations on 2-D points from given centres; (centres, labels, squared
    distances). A centre that loses all its points stays where it was. As scikit-learn, it
    stops once the centres move (in total, squared) by less than 1e-4 of the points'
    variance, or no point changes centre."""
    wx, wy = weights * points[:, 0], weights * points[:, 1]
    settled = 1e-4 * float(points.var(axis=0).mean())
    labels, distance = nearest(points, centres)
    for _ in range(iterations):
        mass = np.bincount(labels, weights=weights, minlength=len(centres))
        filled = mass > 0
        moved = centres.copy()
        moved[filled, 0] = np.bincount(labels, wx, len(centres))[filled] / mass[filled]
        moved[filled, 1] = np.bincount(labels, wy, len(centres))[filled] / mass[filled]
        shift = float(((moved - centres) ** 2).sum())
        centres, previous = moved, labels
        labels, distance = nearest(points, centres)
        if shift <= settled or np.array_equal(labels, previous):
            break
    return centres, labels, distance


def kmeans(
    points: Float32Array,
    weights: FloatArray,
    k: int,
    rng: np.random.Generator,
    restarts: int = 1,
    iterations: int = 100,
) -> tuple[Float32Array, IntArray, float]:
    """Weighted k-means of 2-D points with k-means++ starts; (centres, labels, inertia) of
    the best start."""
    best: tuple[float, Float32Array, IntArray] | None = None
    for _ in range(restarts):
        centres, labels, distance = lloyd(
            points, weights, _plus_plus(points, weights, k, rng), iterations
        )
        inertia = float(distance @ weights)
        if best is None or inertia < best[0]:
            best = (inertia, centres, labels)
    assert best is not None
    return best[1], best[2], best[0]


def silhouette(distances: FloatArray, labels: IntArray) -> float:
    """Mean silhouette of points given their pairwise distances (as scikit-learn: a point
    alone in its cluster scores 0)."""
    k = int(labels.max()) + 1
    onehot = np.zeros((len(labels), k))
    onehot[np.arange(len(labels)), labels] = 1.0
    sizes = onehot.sum(axis=0)
    totals = distances @ onehot  # (n, k): summed distance from each point to each cluster
    own = sizes[labels] - 1
    a = np.divide(
        totals[np.arange(len(labels)), labels], own, out=np.zeros(len(labels)), where=own > 0
    )
    means = np.divide(totals, sizes, out=np.full_like(totals, np.inf), where=sizes > 0)
    means[np.arange(len(labels)), labels] = np.inf
    b = means.min(axis=1)
    spread = np.maximum(a, b)
    score = np.divide(b - a, spread, out=np.zeros(len(labels)), where=(own > 0) & (spread > 0))
    return float(score.mean())


def cluster(points: FloatArray, max_groups: int = MAX_GROUPS) -> tuple[IntArray, int, float]:
    """Polis' two-level k-means; returns (labels, k, silhouette)."""
    n = len(points)
    if n == 0:
        return np.zeros(0, dtype=np.int64), 1, 0.0
    # distinct positions with their multiplicity (a complex key sorts ~6× faster than rows)
    rounded = np.round(points, 9)
    key = rounded[:, 0] + 1j * rounded[:, 1]
    unique_key, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    distinct = len(unique_key)
    if distinct < 2:
        return np.zeros(n, dtype=np.int64), 1, 0.0
    if distinct == 2:  # two camps voting as blocks: two groups, perfectly separated
        return inverse.astype(np.int64), 2, 1.0
    unique = np.stack([unique_key.real, unique_key.imag], axis=1).astype(np.float32)
    rng = np.random.default_rng(0)
    if distinct <= BASE_CLUSTERS:  # every distinct position is its own base cluster
        centres, base_of_unique = unique, np.arange(distinct)
    else:
        # Base clusters are seeded and fitted on BASE_SAMPLE distinct points (weighted by how
        # many participants sit there), then refined by a few Lloyd steps on up to
        # BASE_REFINE of them, and every point joins its nearest centre. Fitting on all points
        # from the start cost 1.5× as much for the same groups; refining on a 20,000 sample
        # only (as fitting did before) lowered the planted groups' ARI at 100,000
        # participants by 0.0005 on average.
        order = rng.permutation(distinct)
        fit = np.sort(order[:BASE_SAMPLE])
        centres, _, _ = kmeans(
            unique[fit], counts[fit].astype(np.float64), BASE_CLUSTERS, rng, 1, BASE_ITERATIONS
        )
        if distinct > BASE_SAMPLE:
            refine = np.sort(order[:BASE_REFINE])
            centres, _, _ = lloyd(
                unique[refine], counts[refine].astype(np.float64), centres, REFINE_ITERATIONS
            )
        base_of_unique, _ = nearest(unique, centres)
    weights = np.bincount(base_of_unique, counts, len(centres)).astype(np.float64)
    kept = weights > 0  # a centre nobody is nearest to is no base cluster
    renumber = np.cumsum(kept) - 1
    centres, weights = centres[kept], weights[kept]
    base_labels = renumber[base_of_unique][inverse]
    n_base = len(centres)
    gaps = centres[:, None, :].astype(np.float64) - centres[None, :, :]
    distances = np.sqrt((gaps**2).sum(axis=2))
    best: tuple[float, IntArray, int] | None = None
    for k in range(2, min(max_groups, n_base - 1) + 1):
        _, labels, _ = kmeans(centres, weights, k, rng, GROUP_RESTARTS)
        used = np.unique(labels)
        if len(used) < 2:
            continue
        labels = np.searchsorted(used, labels)  # number the groups 0..k'-1
        score = silhouette(distances, labels)
        if best is None or score > best[0] + 1e-12:
            best = (score, labels.astype(np.int64), len(used))
    if best is None:
        return np.zeros(n, dtype=np.int64), 1, 0.0
    score, group_of_base, k = best
    return group_of_base[base_labels], k, score


def _z_prop(p: FloatArray, n: FloatArray) -> FloatArray:
    """z of a one-proportion test of p against ½ (Polis `prop-test`)."""
    return np.asarray(2 * np.sqrt(n + 1) * (p - 0.5))


def _z_two(p1: FloatArray, n1: FloatArray, p2: FloatArray, n2: FloatArray) -> FloatArray:
    """z of a two-proportion test (Polis `two-prop-test`, with its +1 smoothing)."""
    n1, n2 = n1 + 1, n2 + 1
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    spread = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return np.asarray(np.divide(p1 - p2, spread, out=np.zeros_like(p1), where=spread > 0))


def compute(
    rows: npt.NDArray[Any],
    cols: npt.NDArray[Any],
    votes: npt.NDArray[Any],
    shape: tuple[int, int],
    *,
    max_representative: int = 5,
    dtype: type[np.floating[Any]] = np.float32,
) -> OpinionMap:
    """The whole map from (participant, statement, vote) triples.

    `dtype` is the value type of the vote matrices and the PCA's products; float64 gives the
    same groups (a test pins that) at twice the memory."""
    n, m = shape
    v = vote_matrix(rows, cols, votes, shape, dtype)
    n_voted = np.diff(v.indptr)
    active = n_voted >= min(MIN_VOTES, m)  # Polis "in conversation"
    xy = np.zeros((n, 2))
    groups = np.full(n, -1, dtype=np.int64)
    axes = np.zeros((2, m))
    k, score = 1, 0.0
    if active.sum() >= 2 and m >= 2:
        x, _mu = centred(v)
        axes = power_pca(x, rows=None if active.all() else active)
        xy = project(x, axes)
        del x
        labels, k, score = cluster(xy[active])
        groups[active] = labels
    elif active.any():
        groups[active] = 0
    agree, disagree, seen = counts(v, groups, max(k, 1))
    pa = (agree + 1) / (seen + 2)
    gic = np.prod(pa, axis=0)
    result = OpinionMap(
        n_participants=n,
        n_statements=m,
        n_votes=int(v.nnz),
        xy=xy,
        groups=groups,
        k=k,
        silhouette=score,
        components=axes,
        agree=agree,
        disagree=disagree,
        seen=seen,
        gic=np.asarray(gic),
    )
    # with one group there is nothing to set it apart from (Polis shows no repness then)
    result.repness = representative(agree, disagree, seen, max_representative) if k > 1 else [[]]
    everyone = np.all(pa > 0.5, axis=0) & (seen.sum(axis=0) > 0)
    result.consensus = [int(j) for j in np.argsort(-gic) if everyone[j]][:max_representative]
    return result


def counts(v: sparse.csr_matrix, groups: IntArray, k: int) -> tuple[IntArray, IntArray, IntArray]:
    """(agree, disagree, seen), each (k, n_statements), counted over the groups' members.

    A bincount over (group, statement, vote) keys, built in place in one integer array per
    block of about a million votes (so it stays ~8 MB at any scale); sparse products G @ V
    took three passes and three converted copies of V. Participants outside every group
    (−1) count in an extra group k that is dropped."""
    n, m = v.shape
    base = np.where(groups >= 0, groups, k) * (3 * m) + 1  # +1: vote −1, 0, +1 → 0, 1, 2
    n_voted = np.diff(v.indptr)
    table = np.zeros((k + 1) * m * 3, dtype=np.int64)
    step = max(1, COUNT_BLOCK * n // max(v.nnz, 1))
    for start in range(0, n, step):
        stop = min(n, start + step)
        lo, hi = v.indptr[start], v.indptr[stop]
        key = np.repeat(base[start:stop], n_voted[start:stop])  # CSR: votes row by row
        columns = v.indices[lo:hi]
        key += columns
        key += columns
        key += columns
        np.add(key, v.data[lo:hi], out=key, casting="unsafe")  # the data are −1, 0, +1
        table += np.bincount(key, minlength=len(table))
    per = table.reshape(k + 1, m, 3)[:k]
    return per[:, :, 2].copy(), per[:, :, 0].copy(), per.sum(axis=2)


def representative(
    agree: IntArray, disagree: IntArray, seen: IntArray, limit: int
) -> list[list[Repness]]:
    """Per group, the statements that set it apart (Polis repness), best first."""
    k = agree.shape[0]
    out: list[list[Repness]] = []
    for gi in range(k):
        rest = np.ones(k, dtype=bool)
        rest[gi] = False
        scores, found = [], []
        for direction, counts in (("agree", agree), ("disagree", disagree)):
            n_in = seen[gi].astype(np.float64)
            n_out = seen[rest].sum(axis=0).astype(np.float64)
            c_in = counts[gi].astype(np.float64)
            c_out = counts[rest].sum(axis=0).astype(np.float64)
            p_in = (c_in + 1) / (n_in + 2)
            p_out = (c_out + 1) / (n_out + 2)
            ratio = p_in / p_out
            significant = (_z_prop(p_in, n_in) > Z_90) & (_z_two(p_in, n_in, p_out, n_out) > Z_90)
            if k == 1:
                significant = _z_prop(p_in, n_in) > Z_90
            metric = ratio * p_in
            # as Polis: significant statements first; in small groups, where no test can be
            # significant, the clearest majority that differs from the others (ranked below)
            fallback = ~significant & (n_in > 0) & (p_in > 0.5) & (ratio > 1)
            eligible = np.flatnonzero((significant | fallback) & (n_in > 0))
            scores.append(metric[eligible] + np.where(significant[eligible], 1e6, 0.0))
            found.append((direction, eligible, p_in, p_out, ratio))
        # best first; a stable sort keeps agree before disagree, then statement order, on ties
        ranked = np.argsort(-np.concatenate(scores), kind="stable")
        n_agree = len(found[0][1])
        chosen: list[Repness] = []
        used: set[int] = set()
        for position in ranked:
            direction, eligible, p_in, p_out, ratio = found[0 if position < n_agree else 1]
            j = int(eligible[position if position < n_agree else position - n_agree])
            if j not in used:
                chosen.append(
                    Repness(j, direction, float(p_in[j]), float(p_out[j]), float(ratio[j]))
                )
                used.add(j)
            if len(chosen) == limit:
                break
        out.append(chosen)
    return out
