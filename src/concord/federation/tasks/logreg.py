"""Multinomial logistic regression, the fast task: scikit-learn's 8×8 digits (64 → 10).

Notation: X (n, d) inputs, W (d, k) weights, b (k,) bias, Z = XW + b logits, P = softmax(Z),
Y one-hot labels. Loss L = −(1/n) Σ log P[y]; ∇W = Xᵀ(P − Y)/n, ∇b = mean(P − Y).
FedProx adds (μ/2)‖W − W⁰‖², whose gradient is μ(W − W⁰).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from concord.federation.data import read_partition
from concord.federation.parameters import Parameters
from concord.federation.tasks.base import EvalResult, TaskData, TrainResult

F = NDArray[np.float64]


def softmax(z: F) -> F:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=-1, keepdims=True))


def one_hot(y: NDArray[Any], k: int) -> F:
    out = np.zeros((len(y), k))
    out[np.arange(len(y)), y.astype(int)] = 1.0
    return out


def sgd(
    w: F,
    b: F,
    x: F,
    y: F,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    mu: float,
    rng: np.random.Generator,
) -> tuple[F, F]:
    """Local training of one client, the plain way."""
    w0 = w.copy()
    n = len(x)
    size = n if batch_size <= 0 else batch_size
    for _ in range(epochs):
        order = rng.permutation(n) if size < n else np.arange(n)
        for start in range(0, n, size):
            idx = order[start : start + size]
            p = softmax(x[idx] @ w + b)  # (m, k)
            g = (p - y[idx]) / len(idx)  # (m, k)
            w = w - lr * (x[idx].T @ g + mu * (w - w0))
            b = b - lr * g.sum(axis=0)
    return w, b


class LogisticRegression:
    """A multinomial logistic regression task over `features` inputs and `classes` labels."""

    name = "logreg"
    features = 64
    classes = 10

    def init_parameters(self, seed: int) -> Parameters:
        rng = np.random.default_rng(seed)
        return {
            "weight": rng.normal(0, 0.01, (self.features, self.classes)).astype(np.float32),
            "bias": np.zeros(self.classes, dtype=np.float32),
        }

    def load_data(self, folder: Path) -> TaskData:
        x, y = read_partition(folder)
        test = folder / "test.npz"
        x_test, y_test = read_partition(folder, "test") if test.exists() else (None, None)
        return TaskData(x.astype(np.float64), y, x_test, y_test)

    def train(self, params: Parameters, data: TaskData, config: dict[str, Any]) -> TrainResult:
        rng = np.random.default_rng(int(config.get("seed", 0)))
        w, b = sgd(
            params["weight"].astype(np.float64),
            params["bias"].astype(np.float64),
            data.x,
            one_hot(data.y, self.classes),
            epochs=int(config.get("epochs", 1)),
            batch_size=int(config.get("batch_size", 10)),
            lr=float(config.get("learning_rate", 0.1)),
            mu=float(config.get("proximal_mu", 0.0)),
            rng=rng,
        )
        # Tensors this task does not train go back as they came (benchmarks/deployment.py pads
        # the model with one to move a CNN's bytes through a real deployment).
        result = {**params, "weight": w.astype(np.float32), "bias": b.astype(np.float32)}
        return TrainResult(result, len(data.x), {})

    def predict(self, params: Parameters, x: NDArray[Any]) -> NDArray[np.int64]:
        """The most probable class of each row of `x` (n, features) → (n,)."""
        z = x.astype(np.float64) @ params["weight"].astype(np.float64) + params["bias"]
        return np.asarray(z.argmax(axis=1), dtype=np.int64)

    def evaluate(self, params: Parameters, data: TaskData) -> EvalResult:
        x = data.x_test if data.x_test is not None else data.x
        y = data.y_test if data.y_test is not None else data.y
        p = softmax(x @ params["weight"].astype(np.float64) + params["bias"])
        loss = float(-np.log(p[np.arange(len(y)), y.astype(int)] + 1e-12).mean())
        accuracy = float((p.argmax(axis=1) == y).mean())
        return EvalResult(loss, len(y), {"accuracy": accuracy})


class DigitsLogReg(LogisticRegression):
    """scikit-learn's bundled digits, scaled to [0, 1]: small enough for tests and demos."""

    name = "logreg-digits"

    @staticmethod
    def dataset() -> tuple[F, NDArray[np.int64]]:
        from sklearn.datasets import load_digits

        digits = load_digits()
        return digits.data / 16.0, digits.target.astype(np.int64)

    def split(self) -> tuple[F, NDArray[np.int64], F, NDArray[np.int64]]:
        """A fixed shuffle (the file is ordered by writer), 80 % to share out, 20 % public test."""
        x, y = self.dataset()
        order = np.random.default_rng(2017).permutation(len(y))
        cut = int(0.8 * len(y))
        return x[order[:cut]], y[order[:cut]], x[order[cut:]], y[order[cut:]]

    def public_test(self) -> tuple[F, NDArray[np.int64]]:
        """The hub evaluates each aggregate on this public split; no member's data is needed."""
        _x, _y, x_test, y_test = self.split()
        return x_test, y_test
