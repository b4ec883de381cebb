"""MNIST tasks: the data from the wheel and its cache, the paper's models, partitions as nodes
load them, and the vectorised cohort against the plain loop. Small subsets only: accuracy
figures live in benchmarks/fedavg_mnist.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from concord.federation import data, mnist
from concord.federation.cohort import train_cohort
from concord.federation.simulation import simulate
from concord.federation.strategies import make_strategy
from concord.federation.tasks.base import TaskData, load_task
from concord.federation.tasks.mnist import Mnist2NN, MnistCNN, MnistLogReg, MnistTask
from concord.governance.jobspec import StrategySpec


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("datasets")


@pytest.fixture(scope="module")
def digits(cache_dir: Path) -> mnist.Mnist:
    return mnist.load_mnist(cache_dir)  # converted once for the module: ~2 s


def test_the_cache_is_written_once_and_loaded_from(cache_dir: Path, digits: mnist.Mnist) -> None:
    tmp_path = cache_dir
    first = digits
    cache = tmp_path / mnist.CACHE_NAME
    assert first.x_train.shape == (60000, 784) and first.x_test.shape == (10000, 784)
    assert first.x_train.dtype == np.uint8 and set(np.unique(first.y_test)) == set(range(10))
    assert [p.name for p in tmp_path.iterdir()] == [mnist.CACHE_NAME]  # no temporary left
    written = cache.stat().st_mtime_ns
    mnist.load_mnist.cache_clear()
    again = mnist.load_mnist(tmp_path)
    assert cache.stat().st_mtime_ns == written
    assert np.array_equal(again.y_train, first.y_train)


def test_a_missing_wheel_is_a_coded_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mnist, "PACKAGE", "no_such_mnist_package")
    with pytest.raises(mnist.MnistMissing) as caught:
        mnist.load_mnist(tmp_path / "empty")
    assert caught.value.code == "federation.mnist_missing" and caught.value.status == 503
    assert not (tmp_path / "empty" / mnist.CACHE_NAME).exists()


@pytest.mark.parametrize(
    ("name", "count"), [("mnist-2nn", 199_210), ("mnist-cnn", 1_663_370), ("logreg-mnist", 7_850)]
)
def test_the_installed_models_have_the_papers_parameter_counts(name: str, count: int) -> None:
    params = load_task(name).init_parameters(0)
    assert sum(v.size for v in params.values()) == count
    assert all(v.dtype == np.float32 for v in params.values())


@pytest.mark.parametrize("task", [MnistLogReg(), Mnist2NN(), MnistCNN()], ids=lambda t: t.name)
def test_local_training_reduces_the_loss(task: MnistTask, digits: mnist.Mnist) -> None:
    local = TaskData(mnist.scale(digits.x_train[:100]), digits.y_train[:100])
    params = task.init_parameters(1)
    before = task.evaluate(params, local)
    result = task.train(params, local, {"epochs": 1, "batch_size": 10, "learning_rate": 0.05})
    after = task.evaluate(result.parameters, local)
    assert result.num_examples == 100
    assert after.loss < before.loss
    assert after.metrics["accuracy"] > before.metrics["accuracy"]


def test_a_partition_round_trips_to_disk_as_a_node_loads_it(
    tmp_path: Path, digits: mnist.Mnist
) -> None:
    part = data.pathological_non_iid(digits.y_train, clients=100, shards=200, seed=0)[7]
    folder = tmp_path / "site"
    data.write_partition(
        folder, digits.x_train[part], digits.y_train[part], digits.x_test[:50], digits.y_test[:50]
    )
    task = load_task("mnist-2nn")
    local = task.load_data(folder)
    assert local.x.dtype == np.float32 and local.x.shape == (600, 784)
    assert np.array_equal(local.x, mnist.scale(digits.x_train[part]))
    assert np.array_equal(local.y, digits.y_train[part])
    assert local.x_test is not None and local.x_test.shape == (50, 784)
    result = task.train(task.init_parameters(0), local, {"epochs": 1, "batch_size": 50})
    assert result.num_examples == 600
    assert 0.0 <= task.evaluate(result.parameters, local).metrics["accuracy"] <= 1.0


def test_partitioners_assign_every_example_exactly_once(digits: mnist.Mnist) -> None:
    y = digits.y_train
    for parts in (
        data.iid(len(y), 100, seed=0),
        data.pathological_non_iid(y, clients=100, shards=200, seed=0),
        data.dirichlet(y, clients=100, alpha=0.5, seed=0),
    ):
        assert len(parts) == 100
        assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(len(y)))
    paper = data.pathological_non_iid(y, clients=100, shards=200, seed=0)
    assert all(len(p) == 600 for p in paper)
    # Shards of 300 cut a sorted MNIST, whose label counts are not multiples of 300, so a
    # few shards straddle two digits; most clients hold two, as in the paper.
    labels = [len(np.unique(y[p])) for p in paper]
    assert max(labels) <= 4 and np.mean([n <= 2 for n in labels]) >= 0.8
    balanced = np.repeat(np.arange(10), 600)
    exact = data.pathological_non_iid(balanced, clients=100, shards=200, seed=3)
    assert max(len(np.unique(balanced[p])) for p in exact) <= 2


class Branchy(nn.Module):
    """A model vmap cannot run: Python control flow on a tensor's value."""

    def __init__(self) -> None:
        super().__init__()
        self.out = nn.Linear(784, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return self.out(x)
        return self.out(-x)


class BranchyTask(MnistTask):
    name = "branchy-test"

    def module(self) -> nn.Module:
        return Branchy()


@pytest.mark.parametrize(
    ("task", "local"),
    [
        (MnistLogReg(), {"epochs": 2, "batch_size": 7, "learning_rate": 0.1, "proximal_mu": 0.1}),
        (Mnist2NN(), {"epochs": 1, "batch_size": 10, "learning_rate": 0.1}),
        (Mnist2NN(), {"epochs": 2, "batch_size": 0, "learning_rate": 0.5}),
        (BranchyTask(), {"epochs": 1, "batch_size": 5, "learning_rate": 0.1}),
    ],
    ids=["logreg-fedprox", "2nn-b10", "2nn-full", "fallback"],
)
def test_the_vectorised_cohort_equals_the_plain_loop(
    task: MnistTask, local: dict[str, float], digits: mnist.Mnist
) -> None:
    # Unequal clients (Dirichlet) so that padding, masks and early-finishing clients count.
    x, y = mnist.scale(digits.x_train[:240]), digits.y_train[:240]
    parts = data.dirichlet(y, clients=8, alpha=1.0, seed=2)
    assert len({len(p) for p in parts}) > 1
    strategy = "fedprox" if local.get("proximal_mu") else "fedavg"
    runs = [
        simulate(
            task,
            x,
            y,
            parts,
            make_strategy(StrategySpec(name=strategy)),
            rounds=2,
            local=local,
            clients_per_round=4,
            seed=5,
            vectorised=v,
        )
        for v in (True, False)
    ]
    assert runs[0].vectorised is (task.name != "branchy-test")
    for k in runs[1].parameters:
        assert np.allclose(runs[0].parameters[k], runs[1].parameters[k], atol=1e-5), k


def test_the_cnn_under_vmap_equals_the_plain_loop(digits: mnist.Mnist) -> None:
    # The simulator loops for the CNN (faster on CPU, see MnistCNN.vectorise); the batched
    # path must still agree, checked directly on a tiny cohort.
    task = MnistCNN()
    x, y = mnist.scale(digits.x_train[:12]), digits.y_train[:12]
    xs, ys = [x[:6], x[6:]], [y[:6], y[6:]]
    config = {"epochs": 1, "batch_size": 3, "learning_rate": 0.05}
    params = task.init_parameters(0)
    batched = train_cohort(task, params, xs, ys, config, [1, 2])
    for model, xc, yc, seed in zip(batched, xs, ys, [1, 2], strict=True):
        plain = task.train(params, TaskData(xc, yc), {**config, "seed": seed}).parameters
        for k in plain:
            assert np.allclose(model[k], plain[k], atol=1e-5), k


def test_the_hub_evaluates_only_the_rounds_the_spec_asks(
    cache_dir: Path, digits: mnist.Mnist, monkeypatch: pytest.MonkeyPatch
) -> None:
    from concord.federation import jobs
    from concord.federation.tables import Update
    from concord.federation.tasks.base import load_task
    from concord.governance.jobspec import JobSpec

    monkeypatch.setattr(mnist, "default_cache_dir", lambda: cache_dir)
    params = load_task("logreg-mnist").init_parameters(0)
    reported = [Update(metrics={"accuracy": 0.5}, examples=10)]

    def scored(every: int, number: int) -> dict[str, float]:
        spec = JobSpec.model_validate(
            {
                "task": "logreg-mnist",
                "participants": {"members": ["kenya"]},
                "rounds": 4,
                "evaluate_every": every,
            }
        )
        return jobs._evaluate(spec, params, reported, 10, number)

    assert scored(2, 1) == {"accuracy": 0.5}  # not due: the nodes' own figures
    on_test = scored(2, 2)
    assert "loss" in on_test and on_test["accuracy"] != 0.5  # the 10,000 public test digits
    assert "loss" in scored(3, 4)  # the last round is always scored
    assert scored(0, 4) == {"accuracy": 0.5}  # 0: never
