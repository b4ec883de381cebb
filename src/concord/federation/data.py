"""Node-local data on disk and the partitioners of the FedAvg paper.

Partitions are `.npz` files written and read without pickling (plain numeric arrays only).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from concord.errors import N_, Invalid

IntArray = NDArray[np.int64]


def write_partition(
    folder: Path,
    x: NDArray[Any],
    y: NDArray[Any],
    x_test: NDArray[Any] | None = None,
    y_test: NDArray[Any] | None = None,
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "train.npz", x=x, y=y)
    if x_test is not None and y_test is not None:
        np.savez(folder / "test.npz", x=x_test, y=y_test)


def read_partition(folder: Path, split: str = "train") -> tuple[NDArray[Any], NDArray[Any]]:
    with np.load(folder / f"{split}.npz", allow_pickle=False) as data:
        return data["x"], data["y"]


def iid(n: int, clients: int, seed: int = 0) -> list[IntArray]:
    """Shuffle, then deal equal shares."""
    order = np.random.default_rng(seed).permutation(n)
    return [part.astype(np.int64) for part in np.array_split(order, clients)]


def pathological_non_iid(
    y: NDArray[Any], clients: int = 100, shards: int = 200, seed: int = 0
) -> list[IntArray]:
    """McMahan et al. 2017: sort by label, cut into `shards` shards, give each client
    shards / clients of them (two for 100 clients and 200 shards)."""
    order = np.argsort(y, kind="stable")
    pieces = np.array_split(order, shards)
    picks = np.random.default_rng(seed).permutation(shards)
    per = shards // clients
    return [
        np.concatenate([pieces[p] for p in picks[c * per : (c + 1) * per]]).astype(np.int64)
        for c in range(clients)
    ]


def dirichlet(y: NDArray[Any], clients: int, alpha: float, seed: int = 0) -> list[IntArray]:
    """Each label's examples split across clients with proportions ~ Dirichlet(α)."""
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[] for _ in range(clients)]
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        shares = rng.dirichlet(np.full(clients, alpha))
        cuts = (np.cumsum(shares)[:-1] * len(idx)).astype(int)
        for c, chunk in enumerate(np.split(idx, cuts)):
            parts[c] += chunk.tolist()
    return [np.array(sorted(p), dtype=np.int64) for p in parts]


PARTITIONS = ("iid", "noniid", "dirichlet")


class UnknownPartition(Invalid):
    code = "federation.unknown_partition"
    message = N_("No partition “{partition}”; choose one of: {known}.")


def partition(
    kind: str, y: NDArray[Any], clients: int, *, alpha: float = 0.5, seed: int = 0
) -> list[IntArray]:
    """The examples with labels `y` shared among `clients` by the partitioner named `kind`:
    `iid`, `noniid` (two label shards each, as the FedAvg paper) or `dirichlet` (α)."""
    if kind == "iid":
        return iid(len(y), clients, seed)
    if kind == "noniid":
        return pathological_non_iid(y, clients=clients, shards=2 * clients, seed=seed)
    if kind == "dirichlet":
        return dirichlet(y, clients, alpha, seed)
    raise UnknownPartition(partition=kind, known=", ".join(PARTITIONS))
