"""The simulator's optional Ray backend: a round's cohorts train in parallel worker processes
(on this machine, or on a Ray cluster the secretariat runs) instead of one after the other.

Each worker loads the task by name from its own installed entry points, and trains its share
of the clients with the same cohort code as the local backend, so the results agree (tested).
Ray moves arrays between its own processes with its object store and pickle: use it only on
machines you control. It never touches members' nodes, which speak safetensors over HTTPS.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from concord.errors import N_, Unavailable
from concord.federation.parameters import Parameters
from concord.federation.strategies.base import ClientUpdate

if TYPE_CHECKING:
    from concord.federation.simulation import Clients, Work


class RayMissing(Unavailable):
    code = "federation.ray_missing"
    message = N_("The Ray backend needs Ray: pip install 'concord[ray]'.")


def start(workers: int | None = None, address: str | None = None) -> None:
    """Starts (or joins, with `address`) Ray once per process."""
    try:
        import ray
    except ImportError as exc:
        raise RayMissing() from exc
    if ray.is_initialized():
        return
    if address:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    else:
        ray.init(
            num_cpus=workers or os.cpu_count() or 1,
            include_dashboard=False,
            log_to_driver=False,
        )


class Cluster:
    """The data of one simulation, put once into Ray's object store."""

    def __init__(
        self,
        task_name: str,
        clients: Clients,
        workers: int | None = None,
        address: str | None = None,
    ) -> None:
        start(workers, address)
        import ray

        self.task_name = task_name
        self.clients = ray.put(clients)
        resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]  # ray ships no annotation for it
        self.workers = max(1, int(resources.get("CPU", 1)))
        self._remote = ray.remote(_train_share)

    def updates(
        self, params: Parameters, work: Work, cohort: int, vectorised: bool
    ) -> Iterator[ClientUpdate]:
        """The round's updates, in the order of `chosen`, as each share comes back."""
        import ray

        # At least one share per worker, and none larger than a cohort.
        shares = max(self.workers, math.ceil(len(work.chosen) / cohort))
        size = math.ceil(len(work.chosen) / shares) if work.chosen else 1
        params_ref = ray.put(params)
        futures = [
            self._remote.remote(self.task_name, params_ref, self.clients, share, cohort, vectorised)
            for share in work.shares(size)
        ]
        for future in futures:
            for parameters, examples, client in ray.get(future):
                yield ClientUpdate(parameters, examples, client)


def _train_share(
    task_name: str, params: Parameters, clients: Clients, work: Work, cohort: int, vectorised: bool
) -> list[tuple[Parameters, int, str]]:
    """In a Ray worker: the local backend's training of some of the round's clients."""
    from concord.federation.simulation import local_updates
    from concord.federation.tasks.base import load_task

    task = load_task(task_name)
    return [
        (u.parameters, u.num_examples, u.client)
        for u in local_updates(task, params, clients, work, cohort, vectorised)
    ]
