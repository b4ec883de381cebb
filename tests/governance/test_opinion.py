"""The opinion map: the fast PCA agrees with the plain one, planted groups are found, and the
group-informed consensus follows its formula."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import adjusted_rand_score

from concord.governance import opinion


def planted(n: int, m: int, per: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, 3, n)
    leaning = rng.choice([-1.0, 1.0], size=(3, m))
    leaning[0, m // 5 :] = -leaning[1, m // 5 :]  # elsewhere groups 0 and 1 differ
    leaning[:, : m // 5] = 1.0  # common ground: every group agrees
    rows = np.repeat(np.arange(n), per)
    cols = np.argsort(rng.random((n, m)), axis=1)[:, :per].ravel()
    p_agree = 0.5 + 0.4 * leaning[groups[rows], cols]
    u = rng.random(len(rows))
    votes = np.where(u < p_agree * 0.9, 1, np.where(u < 0.9, -1, 0))
    return rows, cols, votes, groups


def test_fast_pca_matches_the_plain_one() -> None:
    rows, cols, votes, _ = planted(300, 40, 25)
    dense = np.full((300, 40), np.nan)
    dense[rows, cols] = votes
    axes_plain, xy_plain = opinion.pca_plain(dense)
    x, _ = opinion.centred(opinion.vote_matrix(rows, cols, votes, (300, 40)))
    axes = opinion.power_pca(x)
    xy = opinion.project(x, axes)
    assert np.allclose(np.abs(axes @ axes_plain.T), np.eye(2), atol=1e-4)
    signs = np.sign(np.sum(axes * axes_plain, axis=1))
    assert np.allclose(xy * signs, xy_plain, atol=1e-3)


def test_planted_groups_are_found() -> None:
    rows, cols, votes, groups = planted(2000, 100, 40)
    result = opinion.compute(rows, cols, votes, (2000, 100))
    assert result.k == 3
    assert adjusted_rand_score(groups, result.groups) > 0.9
    # every consensus statement is one of the common-ground ones (the first fifth)
    assert result.consensus and all(j < 20 for j in result.consensus)
    for reps in result.repness:
        assert reps and all(r.statement >= 20 for r in reps)


def test_group_informed_consensus_formula() -> None:
    rows, cols, votes, _ = planted(500, 30, 20, seed=3)
    result = opinion.compute(rows, cols, votes, (500, 30))
    expected = np.prod((result.agree + 1) / (result.seen + 2), axis=0)
    assert np.allclose(result.gic, expected)


def test_too_few_votes_give_no_groups() -> None:
    result = opinion.compute(np.array([0, 1]), np.array([0, 0]), np.array([1, -1]), (2, 1))
    assert result.k == 1
