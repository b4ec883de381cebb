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


def _models() -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(5)
    return [
        {
            "w": rng.normal(size=(3, 4)).astype(np.float32),
            "b": rng.normal(size=4).astype(np.float32),
        },
        {
            "zeta": np.arange(5, dtype=np.int64),
            "alpha": np.ones(3, np.float16),
            "mid": rng.normal(size=(2, 2)),
            "flag": np.array([True, False]),
            "é": np.zeros((0, 3), np.float32),
            "scalar": np.array(2.5, np.float32),
        },
    ]


@pytest.mark.parametrize("index", [0, 1])
def test_streamed_writer_writes_what_safetensors_writes(index: int, tmp_path) -> None:
    from concord.federation.parameters import TensorFile, write_safetensors

    params = _models()[index]
    path = tmp_path / "m.safetensors"
    sha = write_safetensors(path, params)
    assert path.read_bytes() == to_safetensors(params)
    assert sha == digest(params)
    with TensorFile(path) as stored:
        back, expected = stored.load(), from_safetensors(to_safetensors(params))
        assert all(np.array_equal(back[k], expected[k]) for k in params)
        assert stored.read("zeta", 1, 3).tolist() == [1, 2] if index else True


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[:-1],  # truncated
        lambda b: b + b"\0",  # trailing bytes
        lambda b: (10**12).to_bytes(8, "little") + b[8:],  # header longer than the file
        lambda b: b[:8] + b[8:].replace(b'"F32"', b'"F99"', 1),  # unknown dtype
        lambda b: b[:8] + b[8:].replace(b"[0,", b"[4,", 1),  # a gap in the data
        lambda b: b"\x80\x04pickle",
    ],
)
def test_tensor_files_refuse_malformed_headers(damage, tmp_path) -> None:
    from concord.federation.parameters import TensorFile

    path = tmp_path / "bad.safetensors"
    path.write_bytes(damage(to_safetensors(_models()[0])))
    with pytest.raises(BadParameters):
        TensorFile(path).close()


def test_weighted_mean_from_files_equals_the_plain_mean(tmp_path) -> None:
    from concord.federation.parameters import TensorFile, write_safetensors

    rng = np.random.default_rng(1)
    updates = [
        {
            "w": rng.normal(size=(50, 7)).astype(np.float32),
            "b": rng.normal(size=7).astype(np.float32),
        }
        for _ in range(6)
    ]
    weights = [3.0, 1.0, 7.0, 2.0, 5.0, 4.0]
    files = []
    for i, u in enumerate(updates):
        write_safetensors(tmp_path / f"{i}.safetensors", u)
        files.append(TensorFile(tmp_path / f"{i}.safetensors"))
    shapes = {k: (v.shape, v.dtype) for k, v in updates[0].items()}
    pieces = agg.weighted_mean_pieces(list(zip(files, weights, strict=True)), shapes, chunk=16)
    streamed, _ = agg.weighted_mean_stream(zip(updates, weights, strict=True))
    for k in shapes:
        plain = agg.weighted_mean(np.stack([u[k] for u in updates]), np.array(weights))
        assert pieces[k].dtype == np.float32
        assert np.array_equal(pieces[k], streamed[k].astype(np.float32))
        assert np.allclose(pieces[k], plain, atol=1e-6)
    for f in files:
        f.close()


@pytest.mark.parametrize("name", ["fedavgm", "fedadam", "fedyogi", "fedadagrad"])
def test_server_optimiser_state_survives_a_new_process(name: str) -> None:
    """A strategy rebuilt each round from its saved state (as a restarted hub does) computes
    exactly what one kept in memory computes."""
    rng = np.random.default_rng(2)
    spec = StrategySpec(name=name)  # type: ignore[arg-type]
    kept = make_strategy(spec)
    params_kept = params_saved = {"w": np.zeros(6, np.float32)}
    state: dict[str, np.ndarray] = {}
    for r in range(1, 5):
        updates = [
            ClientUpdate({"w": rng.normal(size=6).astype(np.float32)}, 5 + i, str(i))
            for i in range(3)
        ]
        params_kept = kept.aggregate(r, params_kept, updates)
        fresh = make_strategy(spec)
        fresh.load_state(from_safetensors(to_safetensors(state)) if state else {})
        params_saved = fresh.aggregate(r, params_saved, updates)
        state = fresh.state()
        assert state, name
        assert np.array_equal(params_kept["w"], params_saved["w"]), (name, r)
