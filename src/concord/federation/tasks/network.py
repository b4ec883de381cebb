"""Tasks whose model is a PyTorch module, trained by plain local SGD.

This is the plain version, one client at a time, written as a node runs it; the simulator's
batched version (`concord.federation.cohort`) trains many clients at once and a test checks
that the two agree. Both follow the same schedule: each epoch, a client shuffles its n examples
with its own seeded generator (unless one batch holds them all) and takes ⌈n / B⌉ steps of
    w ← w − η ∇[ mean cross-entropy of the batch + (μ/2)‖w − w⁰‖² ],
where B = 0 (or B ≥ n) means the whole local data set (FedSGD's B = ∞) and μ is FedProx's
proximal weight (0 for FedAvg).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import nn

from concord.federation.data import read_partition
from concord.federation.mnist import scale
from concord.federation.parameters import Parameters
from concord.federation.tasks.base import EvalResult, TaskData, TrainResult

# Rows per forward pass when evaluating: the CNN's activations for 256 images are ~50 MB (for
# 2,500 they were half a gigabyte in the hub), and the per-call cost is small beside them.
EVAL_BATCH = 256


def local_config(config: dict[str, Any]) -> tuple[int, int, float, float]:
    """(epochs E, batch size B, learning rate η, proximal μ) from a round's configuration."""
    return (
        int(config.get("epochs", 1)),
        int(config.get("batch_size", 10)),
        float(config.get("learning_rate", 0.1)),
        float(config.get("proximal_mu") or 0.0),
    )


def epoch_order(rng: np.random.Generator, n: int, batch_size: int) -> NDArray[np.int64]:
    """One epoch's visiting order: shuffled, unless a single batch takes every example."""
    if 0 < batch_size < n:
        return rng.permutation(n)
    return np.arange(n)


def steps_per_epoch(n: int, batch_size: int) -> int:
    return 1 if batch_size <= 0 else -(-n // batch_size)


def as_inputs(x: NDArray[Any]) -> NDArray[np.float32]:
    """Stored pixels (uint8, compact on disk) or features → float32 rows."""
    if x.dtype == np.uint8:
        return scale(x)
    return np.ascontiguousarray(x, dtype=np.float32).reshape(len(x), int(np.prod(x.shape[1:])))


class NetworkTask:
    """A task around `module()`; subclasses give the architecture and the data."""

    name = "network"
    # Whether the simulator should batch a cohort with vmap (it falls back to the loop by
    # itself when vmap cannot run the model); False where the loop is measured faster.
    vectorise = True

    def module(self) -> nn.Module:
        raise NotImplementedError

    def init_parameters(self, seed: int) -> Parameters:
        with torch.random.fork_rng():  # the caller's global generator is left as it was
            torch.manual_seed(seed)
            model = self.module()
        return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}

    def load_data(self, folder: Path) -> TaskData:
        x, y = read_partition(folder)
        test = folder / "test.npz"
        x_test, y_test = read_partition(folder, "test") if test.exists() else (None, None)
        return TaskData(
            as_inputs(x),
            y.astype(np.int64),
            None if x_test is None else as_inputs(x_test),
            None if y_test is None else y_test.astype(np.int64),
        )

    def load(self, params: Parameters) -> nn.Module:
        model = self.module()
        model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in params.items()})
        return model

    def train(self, params: Parameters, data: TaskData, config: dict[str, Any]) -> TrainResult:
        epochs, batch_size, lr, mu = local_config(config)
        rng = np.random.default_rng(int(config.get("seed", 0)))
        model = self.load(params)
        weights = list(model.parameters())
        start = [w.detach().clone() for w in weights]
        x = torch.from_numpy(as_inputs(data.x))
        y = torch.from_numpy(data.y.astype(np.int64))
        n = len(y)
        size = max(n, 1) if batch_size <= 0 else batch_size
        loss = torch.zeros(())
        dp = config.get("dp_sgd")
        if dp:
            return self._train_dp_sgd(model, x, y, rng, config, dp)
        for _ in range(epochs):
            order = torch.from_numpy(epoch_order(rng, n, batch_size))
            for first in range(0, n, size):
                idx = order[first : first + size]
                loss = F.cross_entropy(model(x[idx]), y[idx])
                if mu:
                    loss = loss + mu / 2 * sum(
                        ((w - w0) ** 2).sum() for w, w0 in zip(weights, start, strict=True)
                    )
                grads = torch.autograd.grad(loss, weights)
                with torch.no_grad():
                    for w, g in zip(weights, grads, strict=True):
                        w.sub_(lr * g)
        result = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
        return TrainResult(result, n, {"loss": float(loss.detach())})

    def _train_dp_sgd(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        rng: np.random.Generator,
        config: dict[str, Any],
        dp: dict[str, Any],
    ) -> TrainResult:
        """Local SGD with per-example clipping and noise (`privacy.dpsgd`); FedProx's μ is
        not combined with it. Reports the noise multiplier it applied, for the hub's ε."""
        from concord.federation.privacy.dpsgd import noise_generator, private_gradient

        epochs, batch_size, lr, _mu = local_config(config)
        clip_norm, z = float(dp["clip_norm"]), float(dp["noise_multiplier"])
        generator = noise_generator()
        n = len(y)
        size = max(n, 1) if batch_size <= 0 else batch_size
        named = dict(model.named_parameters())
        for _ in range(epochs):
            order = torch.from_numpy(epoch_order(rng, n, batch_size))
            for first in range(0, n, size):
                idx = order[first : first + size]
                grads = private_gradient(
                    model,
                    x[idx],
                    y[idx],
                    clip_norm=clip_norm,
                    noise_multiplier=z,
                    generator=generator,
                )
                with torch.no_grad():
                    for k, g in grads.items():
                        named[k].sub_(lr * g)
        with torch.no_grad():
            loss = F.cross_entropy(model(x), y)
        result = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
        return TrainResult(result, n, {"loss": float(loss), "dp_sgd_noise": z})

    @torch.no_grad()
    def predict(self, params: Parameters, x: NDArray[Any]) -> NDArray[np.int64]:
        """The most likely class of each example."""
        model = self.load(params).eval()
        inputs = torch.from_numpy(as_inputs(x))
        labels = [
            model(inputs[first : first + EVAL_BATCH]).argmax(dim=1)
            for first in range(0, len(inputs), EVAL_BATCH)
        ]
        return torch.cat(labels).numpy().astype(np.int64) if labels else np.zeros(0, np.int64)

    def train_stacked(
        self,
        params: Parameters,
        x: NDArray[Any],
        y: NDArray[Any],
        sizes: NDArray[np.int64],
        config: dict[str, Any],
        seeds: Sequence[int],
    ) -> Parameters:
        """A cohort trained as one computation under vmap (`concord.federation.cohort`)."""
        from concord.federation.cohort import train_stacked
        from concord.federation.tasks.base import NotVectorisable

        if not self.vectorise:
            raise NotVectorisable(f"{self.name} is measured faster one client at a time")
        return train_stacked(self, params, x, y, sizes, config, seeds)

    @torch.no_grad()
    def example_metrics(
        self, params: Parameters, x: NDArray[Any], y: NDArray[Any]
    ) -> dict[str, NDArray[Any]]:
        """Each example's cross-entropy and whether it was classified right."""
        model = self.load(params).eval()
        inputs = torch.from_numpy(as_inputs(x))
        labels = torch.from_numpy(np.asarray(y, dtype=np.int64))
        loss = np.empty(len(labels), dtype=np.float64)
        correct = np.empty(len(labels), dtype=np.float64)
        for first in range(0, len(labels), EVAL_BATCH):
            logits = model(inputs[first : first + EVAL_BATCH])
            batch = labels[first : first + EVAL_BATCH]
            loss[first : first + len(batch)] = F.cross_entropy(logits, batch, reduction="none")
            correct[first : first + len(batch)] = logits.argmax(dim=1) == batch
        return {"loss": loss, "accuracy": correct}

    @torch.no_grad()
    def evaluate(self, params: Parameters, data: TaskData) -> EvalResult:
        x = data.x_test if data.x_test is not None else data.x
        y = data.y_test if data.y_test is not None else data.y
        model = self.load(params).eval()
        inputs = torch.from_numpy(as_inputs(x))
        labels = torch.from_numpy(np.asarray(y, dtype=np.int64))
        loss_sum, correct = 0.0, 0
        for first in range(0, len(labels), EVAL_BATCH):
            logits = model(inputs[first : first + EVAL_BATCH])
            batch = labels[first : first + EVAL_BATCH]
            loss_sum += float(F.cross_entropy(logits, batch, reduction="sum"))
            correct += int((logits.argmax(dim=1) == batch).sum())
        n = max(len(labels), 1)
        return EvalResult(loss_sum / n, len(labels), {"accuracy": correct / n})
