"""What the fast opinion map relies on: float32 gives the same map as float64, our k-means and
silhouette match scikit-learn's, votes may come in any order, the counts match sparse
products, and the map of 10,000 × 500 runs without scikit-learn in well under 200 MB."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from scipy import sparse
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, silhouette_score
from tests.governance.test_opinion import planted

from concord.governance import opinion

# The map is computed in memory and in a plain Python process: no database anywhere.
pytestmark = pytest.mark.database_free


def test_float32_and_float64_give_the_same_map() -> None:
    rows, cols, votes, groups = planted(3000, 120, 40, seed=5)

    single = opinion.compute(rows, cols, votes, (3000, 120), dtype=np.float32)
    double = opinion.compute(rows, cols, votes, (3000, 120), dtype=np.float64)

    assert single.k == double.k == 3
    assert np.array_equal(single.groups, double.groups)
    assert adjusted_rand_score(groups, single.groups) > 0.9
    assert np.allclose(single.components, double.components, atol=1e-5)
    assert np.allclose(single.xy, double.xy, atol=1e-4 * np.abs(double.xy).max())
    assert [[r.statement for r in g] for g in single.repness] == [
        [r.statement for r in g] for g in double.repness
    ]
    assert single.consensus == double.consensus


def test_silhouette_matches_scikit_learn() -> None:
    rng = np.random.default_rng(2)
    points = rng.standard_normal((60, 2))
    labels = rng.integers(0, 4, 60)
    labels[7] = 4  # a cluster of one point, which scores 0
    distances = np.sqrt(((points[:, None, :] - points[None, :, :]) ** 2).sum(axis=2))

    ours = opinion.silhouette(distances, labels)

    assert abs(ours - silhouette_score(points, labels)) < 1e-12


def test_kmeans_is_as_good_as_scikit_learn() -> None:
    rng = np.random.default_rng(3)
    centres = rng.uniform(-10, 10, (8, 2))
    points = (centres[rng.integers(0, 8, 4000)] + rng.standard_normal((4000, 2))).astype(np.float32)
    weights = rng.uniform(0.5, 2.0, 4000)

    _, labels, inertia = opinion.kmeans(points, weights, 8, np.random.default_rng(0), 4)
    theirs = KMeans(n_clusters=8, n_init=4, random_state=0).fit(points, sample_weight=weights)

    assert inertia <= theirs.inertia_ * 1.001
    assert adjusted_rand_score(labels, theirs.labels_) > 0.99


def test_votes_in_any_order_give_the_same_matrix_and_map() -> None:
    rows, cols, votes, _ = planted(800, 60, 20, seed=4)
    shuffle = np.random.default_rng(1).permutation(len(rows))

    v = opinion.vote_matrix(rows[shuffle], cols[shuffle], votes[shuffle], (800, 60))
    in_order = opinion.compute(rows, cols, votes, (800, 60))
    shuffled = opinion.compute(rows[shuffle], cols[shuffle], votes[shuffle], (800, 60))

    reference = sparse.coo_matrix((votes, (rows, cols)), shape=(800, 60)).toarray()
    assert np.array_equal(v.toarray(), reference)
    assert np.array_equal(np.diff(v.indptr), np.bincount(rows, minlength=800))
    assert np.array_equal(in_order.groups, shuffled.groups)
    assert np.allclose(in_order.xy, shuffled.xy, atol=1e-5)


def test_counts_match_sparse_products() -> None:
    rows, cols, votes, _ = planted(500, 30, 12, seed=6)
    v = opinion.vote_matrix(rows, cols, votes, (500, 30))
    groups = np.random.default_rng(0).integers(-1, 3, 500)  # −1: in no group
    opinion.COUNT_BLOCK, block = 1000, opinion.COUNT_BLOCK  # several blocks
    try:
        agree, disagree, seen = opinion.counts(v, groups, 3)
    finally:
        opinion.COUNT_BLOCK = block

    member = np.flatnonzero(groups >= 0)
    g = sparse.csr_matrix((np.ones(len(member)), (groups[member], member)), shape=(3, 500))
    dense = v.toarray()
    voted = sparse.csr_matrix((np.ones(v.nnz), v.indices, v.indptr), shape=v.shape)  # passes too
    assert (votes == 0).any()
    assert np.array_equal(agree, g @ (dense > 0))
    assert np.array_equal(disagree, g @ (dense < 0))
    assert np.array_equal(seen, (g @ voted).toarray())


def test_the_map_of_ten_thousand_runs_without_scikit_learn_in_little_memory(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(7)
    n, m, per = 10_000, 500, 100
    rows = np.repeat(np.arange(n, dtype=np.int32), per)
    cols = np.argpartition(rng.random((n, m)), per, axis=1)[:, :per].ravel().astype(np.int32)
    votes = rng.choice(np.array([-1, 0, 1], dtype=np.int8), n * per)
    np.savez(tmp_path / "votes.npz", rows=rows, cols=cols, votes=votes)
    script = textwrap.dedent(
        f"""
        import json, sys
        import numpy as np
        from concord.governance import opinion
        with np.load({str(tmp_path / "votes.npz")!r}) as data:
            result = opinion.compute(data["rows"], data["cols"], data["votes"], ({n}, {m}))
        # this process's own peak: ru_maxrss would include pytest's size at the fork
        status = open("/proc/self/status").read()
        peak_kb = int(status.split("VmHWM:")[1].split()[0])
        print(json.dumps({{
            "sklearn": any(name.split(".")[0] == "sklearn" for name in sys.modules),
            "peak_mb": peak_kb / 1024,
            "participants": int((result.groups >= 0).sum()),
        }}))
        """
    )

    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )

    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["participants"] == n
    assert not figures["sklearn"]
    assert figures["peak_mb"] < 200
