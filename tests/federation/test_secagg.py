"""SecAgg+: Shamir shares, masks that cancel, quantisation, the spec's refusals, and a round
run by real `concord node` processes over HTTP."""

from __future__ import annotations

import secrets

import numpy as np
import pytest

from concord.federation.privacy import secagg
from concord.governance.jobspec import JobSpec, SecureAggregationNeedsMean


def test_shamir_any_t_of_n_give_the_secret_and_fewer_do_not() -> None:
    # Prepare
    secret = secagg.to_int(secrets.token_bytes(32))
    shares = secagg.split(secret, range(1, 8), threshold=4)
    # Execute
    from_four = secagg.reconstruct({x: shares[x] for x in (2, 3, 5, 7)})
    from_seven = secagg.reconstruct(shares)
    from_three = secagg.reconstruct({x: shares[x] for x in (1, 4, 6)})
    # Assert
    assert from_four == secret and from_seven == secret
    assert from_three != secret


def test_shamir_refuses_bad_holders() -> None:
    with pytest.raises(ValueError):
        secagg.split(5, [1, 1, 2], threshold=2)
    with pytest.raises(ValueError):
        secagg.split(5, [1, 2], threshold=3)


@pytest.mark.parametrize(
    ("clients", "num_shares", "threshold", "dropped"),
    [(6, 0, 0, []), (10, 4, 2, [2, 7]), (9, 0, 0, [1, 5, 9])],
)
def test_masks_cancel_exactly(
    clients: int, num_shares: int, threshold: int, dropped: list[int]
) -> None:
    # Prepare: known inputs mod 2^32
    rng = np.random.default_rng(1)
    inputs = {
        i: rng.integers(0, secagg.MODULUS, size=50, dtype=np.uint32) for i in range(1, clients + 1)
    }
    # Execute
    result = secagg.simulate_round(
        inputs, num_shares=num_shares, threshold=threshold, drop_after_shares=dropped, seed=3
    )
    # Assert: the survivors' sum, exactly
    expected = np.zeros(50, dtype=np.uint32)
    for i in result.survivors:
        expected += inputs[i]
    assert sorted(result.survivors) == [i for i in inputs if i not in dropped]
    assert np.array_equal(result.total, expected)


def test_a_masked_input_alone_looks_nothing_like_the_input() -> None:
    mine = secagg.ClientSecrets()
    other = secagg.ClientSecrets()
    publics = {1: mine.public(), 2: other.public()}
    value = np.arange(100, dtype=np.uint32)
    y = secagg.mask(1, mine, value, publics, [2], "c")
    assert np.count_nonzero(y == value) < 3


def test_too_few_shares_fail() -> None:
    inputs = {i: np.ones(5, dtype=np.uint32) for i in range(1, 6)}
    with pytest.raises(ValueError, match="needed"):
        secagg.simulate_round(inputs, num_shares=0, threshold=4, drop_after_shares=[1, 2])


def test_quantisation_round_trip_within_the_bound() -> None:
    # Prepare: deltas of 5 clients with weights, clipped range 0.5
    rng = np.random.default_rng(7)
    deltas = [rng.uniform(-0.7, 0.7, size=1000) for _ in range(5)]
    weights = [30, 7, 120, 55, 1]
    clip_range = 0.5
    scale = secagg.scale_for(clip_range, sum(weights))
    # Execute
    total = np.zeros(1000, dtype=np.uint32)
    for d, w in zip(deltas, weights, strict=True):
        total += secagg.quantise(d, clip_range, scale, w, rng)
    mean = secagg.dequantise(total, scale, sum(weights))
    # Assert: within 1/S of the exact weighted mean of the clipped deltas
    exact = sum(np.clip(d, -clip_range, clip_range) * w for d, w in zip(deltas, weights)) / sum(
        weights
    )
    assert np.max(np.abs(mean - exact)) <= 1 / scale
    assert np.max(np.abs(mean - exact)) > 0  # quantised, not passed through


def test_neighbourhoods_are_regular_and_symmetric() -> None:
    graph = secagg.neighbours(range(1, 21), 6, seed=5)
    assert all(len(v) == 6 for v in graph.values())
    assert all(i in graph[j] for i, near in graph.items() for j in near)


@pytest.mark.parametrize("strategy", ["median", "trimmed-mean", "krum", "multi-krum"])
def test_spec_refuses_strategies_that_need_each_update(strategy: str) -> None:
    body = {
        "task": "logreg-digits",
        "participants": {"members": ["kenya"]},
        "rounds": 1,
        "strategy": {"name": strategy},
        "privacy": {"secure_aggregation": True},
    }
    with pytest.raises(SecureAggregationNeedsMean) as caught:
        JobSpec.model_validate(body)
    assert caught.value.code == "proposal.secagg_strategy"
    body["strategy"] = {"name": "fedadam"}
    body["privacy"] = {"secure_aggregation": {"num_shares": 4, "threshold": 3}}
    spec = JobSpec.model_validate(body)
    assert spec.privacy.secagg is not None and spec.privacy.secagg.threshold == 3


def test_a_proposal_with_secagg_and_krum_gets_the_coded_error(client, make) -> None:
    # Prepare
    delegate = make.delegate("kenya", "KE")
    # Execute
    answer = client.post(
        "/api/proposals",
        headers=delegate.headers,
        json={
            "kind": "project",
            "title": "Digits, robust and secret",
            "texts": {"en": "x"},
            "body": {
                "task": "logreg-digits",
                "participants": {"members": ["kenya"]},
                "min_participants": 1,
                "rounds": 1,
                "strategy": {"name": "krum"},
                "privacy": {"secure_aggregation": True},
            },
        },
    )
    # Assert
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == "proposal.secagg_strategy"
