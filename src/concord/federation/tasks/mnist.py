"""The MNIST models of the FedAvg paper (McMahan et al. 2017, §3) and a logistic regression.

- `mnist-2nn`: a multilayer perceptron 784 → 200 → 200 → 10 with ReLU (199,210 parameters);
- `mnist-cnn`: two 5×5 convolutions (32 then 64 channels), each followed by ReLU and 2×2 max
  pooling, a fully connected layer of 512 units with ReLU, and a softmax output (1,663,370
  parameters — the paper's count holds with "same" padding, 2 pixels, so the maps go
  28 → 14 → 7 and the dense layer sees 7·7·64 = 3,136 inputs);
- `logreg-mnist`: multinomial logistic regression 784 → 10 (7,850 parameters), for fast tests.

Outputs are logits; the softmax lives in the cross-entropy. Inputs are rows of 784 pixels in
[0, 1]; the CNN views them as 1×28×28 images.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from concord.federation.mnist import load_mnist, scale
from concord.federation.parameters import Parameters
from concord.federation.tasks.logreg import batched_sgd, example_scores
from concord.federation.tasks.network import NetworkTask, as_inputs, local_config


class TwoNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(784, 200)
        self.fc2 = nn.Linear(200, 200)
        self.out = nn.Linear(200, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (n, 784) → (n, 10)
        y: torch.Tensor = self.out(torch.relu(self.fc2(torch.relu(self.fc1(x)))))
        return y


class CNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 5, padding=2)
        self.conv2 = nn.Conv2d(32, 64, 5, padding=2)
        self.fc = nn.Linear(7 * 7 * 64, 512)
        self.out = nn.Linear(512, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (n, 784) → (n, 10)
        h = x.reshape(-1, 1, 28, 28)
        h = torch.max_pool2d(torch.relu(self.conv1(h)), 2)  # (n, 32, 14, 14)
        h = torch.max_pool2d(torch.relu(self.conv2(h)), 2)  # (n, 64, 7, 7)
        h = torch.relu(self.fc(h.flatten(1)))  # (n, 512)
        y: torch.Tensor = self.out(h)
        return y


class SoftmaxRegression(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.out = nn.Linear(784, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.out(x)
        return y


class MnistTask(NetworkTask):
    """MNIST data for any of the models; the test set is public, so the hub evaluates on it."""

    cache_dir: Path | None = None  # None: the data folder's `datasets/`

    def dataset(self) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        data = load_mnist(self.cache_dir)
        return scale(data.x_train), data.y_train

    def training_pool(self) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        return self.dataset()

    def public_test(self) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        data = load_mnist(self.cache_dir)
        return scale(data.x_test), data.y_test


class Mnist2NN(MnistTask):
    name = "mnist-2nn"

    def module(self) -> nn.Module:
        return TwoNN()


class MnistCNN(MnistTask):
    name = "mnist-cnn"
    # Under vmap the convolutions become grouped convolutions, which this CPU build runs far
    # slower than ten plain ones (measured 28 s against 3.5 s for 10 clients × 60 steps of
    # 10 images): a conv layer's work is already large enough per client for the loop.
    vectorise = False

    def module(self) -> nn.Module:
        return CNN()


class MnistLogReg(MnistTask):
    """Logistic regression as a PyTorch module (for nodes), whose cohorts the simulator
    trains with the NumPy batched SGD of `tasks.logreg` instead of vmap: with every client
    starting from the same weights, the first step's logits are one large matrix product,
    measured 3x faster than vmap's per-client products (the results agree to 1e-8)."""

    name = "logreg-mnist"

    def module(self) -> nn.Module:
        return SoftmaxRegression()

    def train_stacked(
        self,
        params: Parameters,
        x: NDArray[Any],
        y: NDArray[Any],
        sizes: NDArray[np.int64],
        config: dict[str, Any],
        seeds: Sequence[int],
    ) -> Parameters:
        epochs, batch_size, lr, mu = local_config(config)
        v, b = batched_sgd(
            params["out.weight"].astype(np.float32, copy=False),  # (10, 784)
            params["out.bias"].astype(np.float32),
            x,
            y,
            sizes,
            10,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            mu=mu,
            seeds=seeds,
            proximal_bias=True,
        )
        return {"out.weight": v, "out.bias": b}

    def example_metrics(
        self, params: Parameters, x: NDArray[Any], y: NDArray[Any]
    ) -> dict[str, NDArray[Any]]:
        return example_scores(params["out.weight"].T, params["out.bias"], as_inputs(x), y)
