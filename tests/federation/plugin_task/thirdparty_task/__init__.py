"""A task written outside Concord, as a member's researchers would ship one: its own package,
registered under the `concord.tasks` entry points by its own distribution metadata.

It uses only what the `Task` and `Simulable` protocols ask for, and nothing of Concord's task
classes: a nearest-class-mean classifier on three Gaussian blobs in five dimensions. Training
moves each class mean towards the local examples' mean; the model is the (3, 5) means."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from concord.federation.data import read_partition
from concord.federation.tasks.base import EvalResult, TaskData, TrainResult

CLASSES, FEATURES = 3, 5


def _blobs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).normal(0, 2.0, (CLASSES, FEATURES))
    y = rng.integers(0, CLASSES, n)
    return (centres[y] + rng.normal(0, 1.0, (n, FEATURES))).astype(np.float32), y


class BlobMeans:
    name = "thirdparty"

    def init_parameters(self, seed: int) -> dict[str, np.ndarray]:
        return {"means": np.zeros((CLASSES, FEATURES), dtype=np.float32)}

    def load_data(self, folder: Path) -> TaskData:
        x, y = read_partition(folder)
        return TaskData(x, y)

    def train(self, params: dict[str, Any], data: TaskData, config: dict[str, Any]) -> TrainResult:
        rate = float(config.get("learning_rate", 0.5))
        means = params["means"].astype(np.float64)
        for k in range(CLASSES):
            mine = data.x[data.y == k]
            if len(mine):
                means[k] += rate * (mine.mean(axis=0) - means[k])
        return TrainResult({"means": means.astype(np.float32)}, len(data.y))

    def evaluate(self, params: dict[str, Any], data: TaskData) -> EvalResult:
        x = data.x_test if data.x_test is not None else data.x
        y = data.y_test if data.y_test is not None else data.y
        distance = ((x[:, None, :] - params["means"][None]) ** 2).sum(axis=2)  # (n, classes)
        hit = distance.argmin(axis=1) == y
        return EvalResult(
            float(distance.min(axis=1).mean()), len(y), {"accuracy": float(hit.mean())}
        )

    def training_pool(self) -> tuple[np.ndarray, np.ndarray]:
        return _blobs(1200, seed=1)

    def public_test(self) -> tuple[np.ndarray, np.ndarray]:
        return _blobs(400, seed=2)
