"""What a task provides, and how a node finds the tasks installed at its site."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

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
