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

`pca_plain` is the same PCA written with dense NumPy and an eigen-decomposition, kept beside
the fast one; a test checks that they agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import sparse
from threadpoolctl import threadpool_limits

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

MIN_VOTES = 7  # Polis clusters only participants with at least this many votes
BASE_CLUSTERS = 100
BASE_SAMPLE = 20_000
MAX_GROUPS = 5
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


def matrices(
    rows: IntArray, cols: IntArray, votes: npt.NDArray[Any], shape: tuple[int, int]
) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
    """(V, S): the votes and the 'seen' mask as CSR matrices with the same structure.

    Each (row, col) pair must appear once (the caller keeps the latest vote)."""
    data = np.asarray(votes, dtype=np.float64)
    # explicit zeros (passes) are kept by the COO → CSR conversion, so S can share V's structure
    v = sparse.csr_matrix((data, (rows, cols)), shape=shape)
    v.sort_indices()
    s = sparse.csr_matrix((np.ones(v.nnz, dtype=np.float32), v.indices, v.indptr), shape=shape)
    return v, s


def centred(v: sparse.csr_matrix, s: sparse.csr_matrix) -> tuple[sparse.csr_matrix, FloatArray]:
    """X = V − μ on voted cells only, and μ (n_statements,)."""
    counts = np.asarray(s.sum(axis=0)).ravel()  # (n_statements,)
    sums = np.asarray(v.sum(axis=0)).ravel()
    mu = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
    x = sparse.csr_matrix((v.data - mu[v.indices], v.indices, v.indptr), shape=v.shape)
    return x, mu


def power_pca(
    x: sparse.csr_matrix, n_components: int = 2, iterations: int = 200, tol: float = 1e-6
) -> FloatArray:
    """Top principal axes of X (rows) by subspace iteration on Xᵀ X; (n_components, m)."""
    m = x.shape[1]
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((m, n_components)))  # (m, c)
    xt = x.T  # a CSC view: no copy
    for _ in range(iterations):
        z = xt @ (x @ q)  # (m, c)
        q_next, _ = np.linalg.qr(z)
        # the subspace has converged when the projection onto it no longer moves
        if np.linalg.norm(q_next @ (q_next.T @ q) - q) < tol:
            q = q_next
            break
        q = q_next
    # order and orient the axes inside the subspace (Rayleigh-Ritz), for stable output
    small = (x @ q).T @ (x @ q)  # (c, c)
    _values, vectors = np.linalg.eigh(small)
    axes = (q @ vectors[:, ::-1]).T  # (c, m), largest first
    signs = np.sign(axes[np.arange(n_components), np.abs(axes).argmax(axis=1)])
    return np.asarray(axes * signs[:, None])


def project(x: sparse.csr_matrix, s: sparse.csr_matrix, axes: FloatArray) -> FloatArray:
    """p_i = X_i · axes ᵀ · sqrt(n_statements / n_voted_i); (n, 2)."""
    n_voted = np.asarray(s.sum(axis=1)).ravel()
    scale = np.sqrt(x.shape[1] / np.maximum(n_voted, 1))
    return np.asarray((x @ axes.T) * scale[:, None])


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


def cluster(points: FloatArray, max_groups: int = MAX_GROUPS) -> tuple[IntArray, int, float]:
    """Polis' two-level k-means; returns (labels, k, silhouette).

    Runs on one thread: the work is small, and OpenMP threads spinning on a busy shared hub
    made the time vary two-fold in our measurements."""
    with threadpool_limits(1):
        return _cluster(points, max_groups)


def _cluster(points: FloatArray, max_groups: int) -> tuple[IntArray, int, float]:
    # Imported here: scikit-learn costs a hub ~100 MB and a second at start, for a page that
    # recomputes the map now and then.
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    n = len(points)
    unique, inverse = (
        np.unique(np.round(points, 9), axis=0, return_inverse=True) if n else (points, None)
    )
    distinct = len(unique)
    if distinct < 2:
        return np.zeros(n, dtype=np.int64), 1, 0.0
    if distinct == 2:  # two camps voting as blocks: two groups, perfectly separated
        return np.asarray(inverse, dtype=np.int64).ravel(), 2, 1.0
    n_base = min(BASE_CLUSTERS, distinct)
    # Base clusters are fitted on at most BASE_SAMPLE points and every point then joins its
    # nearest centre: 100 centres in 2-D are pinned down well by tens of thousands of points.
    sample = points
    if n > BASE_SAMPLE:
        sample = points[np.random.default_rng(0).choice(n, BASE_SAMPLE, replace=False)]
    base = KMeans(n_clusters=n_base, n_init=1, random_state=0, max_iter=50).fit(sample)
    base_labels = base.predict(points) if n > BASE_SAMPLE else base.labels_
    centres = base.cluster_centers_
    weights = np.bincount(base_labels, minlength=n_base).astype(np.float64)
    best: tuple[float, IntArray, int] | None = None
    for k in range(2, min(max_groups, n_base - 1) + 1):
        model = KMeans(n_clusters=k, n_init=4, random_state=0).fit(centres, sample_weight=weights)
        if len(set(model.labels_)) < 2:
            continue
        score = float(silhouette_score(centres, model.labels_))
        if best is None or score > best[0] + 1e-12:
            best = (score, model.labels_.astype(np.int64), k)
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
    rows: IntArray,
    cols: IntArray,
    votes: npt.NDArray[Any],
    shape: tuple[int, int],
    *,
    max_representative: int = 5,
) -> OpinionMap:
    """The whole map from (participant, statement, vote) triples."""
    n, m = shape
    v, s = matrices(rows, cols, votes, shape)
    n_voted = np.asarray(s.sum(axis=1)).ravel()
    active = n_voted >= min(MIN_VOTES, m)  # Polis "in conversation"
    x, _mu = centred(v, s)
    xy = np.zeros((n, 2))
    groups = np.full(n, -1, dtype=np.int64)
    axes = np.zeros((2, m))
    k, score = 1, 0.0
    if active.sum() >= 2 and m >= 2:
        x_in = x[active]
        axes = power_pca(x_in)
        xy = project(x, s, axes)
        labels, k, score = cluster(xy[active])
        groups[active] = labels
    elif active.any():
        groups[active] = 0
    # group × statement counts by sparse products, one row of G per group
    member = np.flatnonzero(groups >= 0)
    g = sparse.csr_matrix(
        (np.ones(len(member)), (groups[member], member)), shape=(max(k, 1), n)
    )  # (k, n)
    agree_m = sparse.csr_matrix(((v.data > 0).astype(np.float32), v.indices, v.indptr), v.shape)
    disagree_m = sparse.csr_matrix(((v.data < 0).astype(np.float32), v.indices, v.indptr), v.shape)
    agree = np.asarray((g @ agree_m).todense()).astype(np.int64)  # (k, m)
    disagree = np.asarray((g @ disagree_m).todense()).astype(np.int64)
    seen = np.asarray((g @ s).todense()).astype(np.int64)
    pa = (agree + 1) / (seen + 2)
    gic = np.prod(pa, axis=0)
    result = OpinionMap(
        n_participants=n,
        n_statements=m,
        n_votes=int(s.nnz),
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


def representative(
    agree: IntArray, disagree: IntArray, seen: IntArray, limit: int
) -> list[list[Repness]]:
    """Per group, the statements that set it apart (Polis repness), best first."""
    k = agree.shape[0]
    out: list[list[Repness]] = []
    for gi in range(k):
        rest = np.ones(k, dtype=bool)
        rest[gi] = False
        candidates: list[tuple[float, Repness]] = []
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
            for j in np.flatnonzero((significant | fallback) & (n_in > 0)):
                candidates.append(
                    (
                        float(metric[j]) + (1e6 if significant[j] else 0.0),
                        Repness(
                            int(j), direction, float(p_in[j]), float(p_out[j]), float(ratio[j])
                        ),
                    )
                )
        candidates.sort(key=lambda c: -c[0])
        chosen: list[Repness] = []
        used: set[int] = set()
        for _metric, rep in candidates:
            if rep.statement not in used:
                chosen.append(rep)
                used.add(rep.statement)
            if len(chosen) == limit:
                break
        out.append(chosen)
    return out
