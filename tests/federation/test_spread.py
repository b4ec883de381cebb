"""The Ray backend gives the local backend's results, with cohorts trained in worker processes."""

from __future__ import annotations

import numpy as np
import pytest

from concord.federation import data
from concord.federation.simulation import UnknownBackend, simulate
from concord.federation.strategies import make_strategy
from concord.federation.tasks.logreg import DigitsLogReg
from concord.governance.jobspec import StrategySpec

pytestmark = pytest.mark.slow


def _run(backend: str, **kw):
    task = DigitsLogReg()
    x, y = task.dataset()
    parts = data.dirichlet(y, 24, alpha=0.5, seed=3)
    return simulate(
        task,
        x,
        y,
        parts,
        make_strategy(StrategySpec(name="fedavgm")),
        rounds=3,
        local={"epochs": 1, "batch_size": 16, "learning_rate": 0.1},
        clients_per_round=12,
        seed=5,
        cohort=4,
        backend=backend,
        **kw,
    )


def test_ray_backend_agrees_with_local() -> None:
    pytest.importorskip("ray", reason="the Ray backend is optional: pip install 'concord[ray]'")
    import ray

    try:
        spread = _run("ray", workers=2)
        # The work really left this process: Ray ran tasks on its workers.
        assert ray.cluster_resources().get("CPU") == 2
    finally:
        ray.shutdown()
    here = _run("local")
    for name, value in here.parameters.items():
        np.testing.assert_allclose(spread.parameters[name], value, rtol=1e-5, atol=1e-6)
    assert [h["clients"] for h in spread.history] == [12, 12, 12]


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(UnknownBackend):
        _run("spark")
