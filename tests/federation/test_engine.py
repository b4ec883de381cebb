"""The federation engine: parameters as safetensors, aggregation functions against hand
computations, strategies, partitioners, and the vectorised simulator against the plain loop."""

from __future__ import annotations

import numpy as np
import pytest

from concord.federation import data
from concord.federation.parameters import (
    BadParameters,
    check_compatible,
    digest,
    from_safetensors,
    to_safetensors,
)
from concord.federation.simulation import simulate
from concord.federation.strategies import REGISTRY, make_strategy
from concord.federation.strategies import aggregate as agg
from concord.federation.strategies.base import ClientUpdate
from concord.federation.tasks.base import UnknownTask, load_task
from concord.federation.tasks.logreg import DigitsLogReg
from concord.governance.jobspec import StrategySpec


def test_parameters_round_trip_and_checks() -> None:
    params = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(3, np.float32)}
    back = from_safetensors(to_safetensors(params))
    assert all(np.array_equal(params[k], back[k]) for k in params)
    assert digest(params) == digest(back)
    with pytest.raises(BadParameters):
        from_safetensors(b"\x80\x04pickle")
    bad = {"w": params["w"].copy(), "b": np.array([1, np.nan, 2], np.float32)}
    with pytest.raises(BadParameters):
        check_compatible(params, bad)
    with pytest.raises(BadParameters):
        check_compatible(params, {"w": params["w"].astype(np.float64), "b": params["b"]})
    with pytest.raises(BadParameters):
        check_compatible(params, {"w": params["w"], "extra": params["b"]})
    check_compatible(params, {"b": params["b"], "w": params["w"]})  # order does not matter


def test_aggregation_functions_by_hand() -> None:
    stack = np.array([[1.0, 10.0], [3.0, 20.0], [8.0, -5.0]])
    assert agg.weighted_mean(stack, np.array([1, 1, 2])).tolist() == [5.0, 5.0]
    mean, total = agg.weighted_mean_stream([({"x": stack[i]}, w) for i, w in enumerate([1, 1, 2])])
    assert mean["x"].tolist() == [5.0, 5.0] and total == 4
    assert agg.coordinate_median(stack).tolist() == [3.0, 10.0]
    assert agg.trimmed_mean(stack, 1 / 3).tolist() == [3.0, 10.0]
    honest = np.array([[1.0, 1.0], [1.1, 0.9], [0.9, 1.1], [1.0, 1.05]])
    attacked = np.vstack([honest, [[50.0, -50.0]]])
    assert np.allclose(
        agg.multi_krum(attacked, f=1, m=1), honest[np.argmin(agg.krum_scores(attacked, 1)[:4])]
    )
    assert abs(agg.multi_krum(attacked, f=1, m=3)).max() < 2


def test_every_strategy_aggregates() -> None:
    global_params = {"w": np.zeros(4, np.float32)}
    updates = [
        ClientUpdate({"w": np.full(4, float(i), np.float32)}, 10 + i, str(i)) for i in range(5)
    ]
    for name in REGISTRY:
        strategy = make_strategy(StrategySpec(name=name))  # type: ignore[arg-type]
        out = strategy.aggregate(1, global_params, list(updates))
        assert out["w"].dtype == np.float32 and np.isfinite(out["w"]).all(), name
    fedavg = make_strategy(StrategySpec(name="fedavg")).aggregate(1, global_params, updates)
    assert fedavg["w"][0] == pytest.approx(sum(i * (10 + i) for i in range(5)) / 60)


def test_partitioners() -> None:
    y = np.repeat(np.arange(10), 60)
    parts = data.pathological_non_iid(y, clients=100, shards=200)
    assert sum(len(p) for p in parts) == 600 and all(len(p) == 6 for p in parts)
    assert max(len(np.unique(y[p])) for p in parts) <= 2
    iid = data.iid(600, 10)
    assert sorted(np.concatenate(iid).tolist()) == list(range(600))
    skewed = data.dirichlet(y, clients=5, alpha=0.1, seed=1)
    assert sum(len(p) for p in skewed) == 600


def test_installed_task_is_found_and_unknown_refused() -> None:
    assert load_task("logreg-digits").name == "logreg-digits"
    with pytest.raises(UnknownTask):
        load_task("remote-code-please")


@pytest.mark.parametrize(("batch_size", "epochs"), [(0, 1), (10, 2), (7, 1)])
def test_vectorised_simulation_equals_the_plain_loop(batch_size: int, epochs: int) -> None:
    task = DigitsLogReg()
    x, y = task.dataset()
    parts = data.dirichlet(y[:600], clients=12, alpha=0.5, seed=3)
    local = {"epochs": epochs, "batch_size": batch_size, "learning_rate": 0.2}
    runs = [
        simulate(
            task,
            x[:600],
            y[:600],
            parts,
            make_strategy(StrategySpec(name="fedprox")),
            rounds=3,
            local={**local, "proximal_mu": 0.1},
            clients_per_round=8,
            seed=4,
            vectorised=v,
        )
        for v in (True, False)
    ]
    for k in runs[0].parameters:
        assert np.allclose(runs[0].parameters[k], runs[1].parameters[k], atol=1e-5)


def test_federated_training_learns_the_digits() -> None:
    task = DigitsLogReg()
    x, y = task.dataset()
    order = np.random.default_rng(0).permutation(len(y))  # the file is ordered by writer
    x, y = x[order], y[order]
    train, test = slice(0, 1400), slice(1400, None)
    parts = data.iid(1400, 20, seed=0)
    result = simulate(
        task,
        x[train],
        y[train],
        parts,
        make_strategy(StrategySpec()),
        rounds=20,
        local={"epochs": 2, "batch_size": 10, "learning_rate": 0.3},
        clients_per_round=10,
        test=(x[test], y[test]),
    )
    assert result.history[-1]["accuracy"] > 0.9
    assert result.history[-1]["accuracy"] > result.history[0]["accuracy"]
