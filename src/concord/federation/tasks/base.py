"""What a task provides, and how a node finds the tasks installed at its site."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from concord.errors import N_, NotFound
from concord.federation.parameters import Parameters


class UnknownTask(NotFound):
    code = "federation.unknown_task"
    message = N_("No task “{task}” is installed here; installed: {installed}.")


@dataclass
class TaskData:
    x: NDArray[Any]
    y: NDArray[Any]
    x_test: NDArray[Any] | None = None
    y_test: NDArray[Any] | None = None


@dataclass
class TrainResult:
    parameters: Parameters
    num_examples: int
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class EvalResult:
    loss: float
    num_examples: int
    metrics: dict[str, float] = field(default_factory=dict)


class Task(Protocol):
    name: str

    def init_parameters(self, seed: int) -> Parameters: ...

    def load_data(self, folder: Path) -> TaskData: ...

    def train(self, params: Parameters, data: TaskData, config: dict[str, Any]) -> TrainResult: ...

    def evaluate(self, params: Parameters, data: TaskData) -> EvalResult: ...


@runtime_checkable
class Simulable(Protocol):
    """A task that brings its own data, so that `concord simulate` can run it and the hub can
    evaluate on a public split. Arrays are (n, …) inputs and (n,) labels."""

    def training_pool(self) -> tuple[NDArray[Any], NDArray[Any]]:
        """The examples the simulator partitions among its clients."""
        ...

    def public_test(self) -> tuple[NDArray[Any], NDArray[Any]]:
        """A public test set no client trains on (the simulator partitions it the same way to
        give each client its own test share)."""
        ...


@runtime_checkable
class ExampleMetrics(Protocol):
    """A task that scores examples one by one: `{"loss": (n,), "accuracy": (n,), …}`, each the
    example's contribution, so that any group's metric is the mean over its examples. The
    simulator's per-client (fairness) evaluation is then one pass over every client's test
    share and a `bincount`, instead of one `evaluate` call per client."""

    def example_metrics(
        self, params: Parameters, x: NDArray[Any], y: NDArray[Any]
    ) -> dict[str, NDArray[Any]]: ...


class NotVectorisable(Exception):
    """The model cannot train a stack of clients at once (data-dependent control flow,
    in-place buffers, or measured slower that way): the simulator loops over clients."""


@runtime_checkable
class Vectorisable(Protocol):
    """A task that trains a cohort of clients as one computation (the simulator's fast path).

    `x` (C, N, …) and `y` (C, N) hold each client's examples, padded to N; `sizes` (C,) says
    how many are real. Each client follows exactly the schedule of `Task.train` with its own
    `seeds[c]`; the result holds every tensor stacked, (C, *shape). May raise
    `NotVectorisable` before doing any work."""

    def train_stacked(
        self,
        params: Parameters,
        x: NDArray[Any],
        y: NDArray[Any],
        sizes: NDArray[np.int64],
        config: dict[str, Any],
        seeds: Sequence[int],
    ) -> Parameters: ...


@runtime_checkable
class Predictor(Protocol):
    """A task that can also label new inputs with trained parameters (optional: training and
    evaluation are all the federation needs; people using a published model need this)."""

    def predict(self, params: Parameters, x: NDArray[Any]) -> NDArray[Any]: ...


def installed() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group="concord.tasks")}


def load_task(name: str) -> Task:
    """The task called `name` among this machine's installed entry points."""
    found = installed()
    if name not in found:
        raise UnknownTask(task=name, installed=", ".join(sorted(found)) or "—")
    task: Task = found[name].load()()
    return task
