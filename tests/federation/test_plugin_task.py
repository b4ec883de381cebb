"""Tasks are a plug-in interface: a task written outside `concord.federation.tasks`, found
only through its distribution's `concord.tasks` entry point, trains with real `concord node`
processes, is evaluated by the hub, and simulates with `concord simulate` — all through the
`Task` and `Simulable` protocols. Also: the simulator's per-client (fairness) evaluation, its
`--evaluate-every`, and the refusal of an unknown partition."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

import concord
from concord.federation import data, jobs
from concord.federation.files import read_parameters
from concord.federation.simulation import simulate
from concord.federation.strategies.fedavg import FedAvg
from concord.federation.tables import Job, Round
from concord.federation.tasks.base import TaskData, load_task
from concord.federation.tasks.logreg import DigitsLogReg
from concord.governance.jobspec import JobSpec
from concord.members import keys

PLUGIN = Path(__file__).parent / "plugin_task"


@pytest.fixture
def thirdparty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Installs the third-party task as a distribution would: metadata with an entry point,
    on the path of this process and of its subprocesses. Returns the subprocess environment."""
    site = tmp_path / "site-packages"
    info = site / "thirdparty_task-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-task\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[concord.tasks]\nthirdparty = thirdparty_task:BlobMeans\n"
    )
    monkeypatch.syspath_prepend(str(PLUGIN))
    monkeypatch.syspath_prepend(str(site))
    path = os.pathsep.join([str(site), str(PLUGIN), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path}


def _concord(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from concord.cli import main; main()", *args],
        env={**env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.database_free  # the simulator and source checks open no database
def test_a_third_party_task_simulates_through_the_protocol(thirdparty: dict[str, str]) -> None:
    # Prepare: the task is nowhere in Concord's own code.
    task = load_task("thirdparty")
    assert not type(task).__module__.startswith("concord.")

    # Execute: simulate it as a user would.
    run = _concord(
        thirdparty,
        *("simulate", "--task", "thirdparty", "--clients", "20", "--rounds", "3"),
        *("--partition", "dirichlet", "--alpha", "0.3", "--json"),
    )

    # Assert: it learnt, and each round reports the clients' fairness.
    assert run.returncode == 0, run.stderr
    history = json.loads(run.stdout)
    assert [h["round"] for h in history] == [1, 2, 3]
    last = history[-1]
    assert last["accuracy"] > 0.8
    assert last["accuracy_worst"] <= last["accuracy_worst10"] <= last["accuracy_mean"] <= 1.0
    assert last["accuracy_spread"] >= 0.0
    assert last["clients_evaluated"] > 0


@pytest.mark.slow
def test_a_third_party_task_trains_on_real_nodes_and_the_hub_evaluates_it(
    thirdparty: dict[str, str], live_server, make, sessions, settings, db, tmp_path
) -> None:
    # Prepare: two members' sites hold shares of the task's own training pool.
    members = [("kenya", "KE"), ("brazil", "BR")]
    actors = {slug: make.delegate(slug, code) for slug, code in members}
    task = load_task("thirdparty")
    x, y = task.training_pool()  # type: ignore[attr-defined]
    spec = JobSpec.model_validate(
        {
            "task": "thirdparty",
            "participants": {"members": [m for m, _c in members]},
            "rounds": 2,
            "min_participants": 2,
            "round_deadline_s": 120,
            "local": {"epochs": 1, "batch_size": 10, "learning_rate": 0.5},
        }
    )
    with sessions() as s:
        job_id = jobs.create_job(s, settings, spec, title="Blobs").id
        s.commit()
    nodes = []
    for (slug, _code), part in zip(members, data.iid(len(y), 2, seed=1), strict=True):
        folder = tmp_path / "sites" / slug
        data.write_partition(folder, x[part], y[part])
        key_file = tmp_path / "keys" / f"{slug}.pem"
        keys.save_private(actors[slug].key, key_file)
        nodes.append(
            subprocess.Popen(
                [
                    *(sys.executable, "-c", "from concord.cli import main; main()", "node"),
                    *("--member", slug, "--data", str(folder), "--hub", live_server),
                    *("--token", actors[slug].token, "--key-file", str(key_file)),
                    *("--idle-exit", "4", "--wait", "1", "--no-energy"),
                ],
                env=thirdparty,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )

    # Execute: the nodes work the job to its end.
    try:
        outputs = [n.communicate(timeout=240)[0] for n in nodes]
    finally:
        for n in nodes:
            n.kill()

    # Assert: trained by both, evaluated by the hub on the task's public test set.
    assert all(n.returncode == 0 for n in nodes), outputs
    job = db.get(Job, job_id)
    db.refresh(job)
    assert job.status == "completed"
    closed = db.scalars(select(Round).where(Round.job_id == job_id, Round.status == "closed")).all()
    assert len(closed) == 2
    x_test, y_test = task.public_test()  # type: ignore[attr-defined]
    assert closed[-1].metrics["accuracy"] > 0.8
    assert closed[-1].metrics["accuracy"] == pytest.approx(
        task.evaluate(read_parameters(settings, job.parameters), TaskData(x_test, y_test)).metrics[
            "accuracy"
        ],
        abs=1e-6,
    )


@pytest.mark.database_free  # the simulator and source checks open no database
def test_an_unknown_partition_is_refused_with_its_code(thirdparty: dict[str, str]) -> None:
    run = _concord(thirdparty, "simulate", "--task", "thirdparty", "--partition", "zipf")
    assert run.returncode != 0
    assert "[federation.unknown_partition]" in run.stderr
    assert "iid, noniid, dirichlet" in run.stderr
    with pytest.raises(data.UnknownPartition):
        data.partition("zipf", np.zeros(10), 2)


@pytest.mark.database_free  # the simulator and source checks open no database
def test_fairness_in_one_pass_equals_each_client_evaluated_alone() -> None:
    # Prepare: 30 clients of skewed label mixes, each with a test share cut the same way.
    task = DigitsLogReg()
    x, y = task.training_pool()
    x_test, y_test = task.public_test()
    parts = data.partition("dirichlet", y, 30, alpha=0.3, seed=4)
    test_parts = data.partition("dirichlet", y_test, 30, alpha=0.3, seed=4)

    # Execute
    result = simulate(
        task,
        x,
        y,
        parts,
        FedAvg(),
        rounds=2,
        local={"epochs": 1, "batch_size": 10, "learning_rate": 0.1},
        test=(x_test, y_test),
        test_partitions=test_parts,
    )

    # Assert: the one-pass aggregates equal a loop of `evaluate` over the clients.
    each = np.array(
        [
            task.evaluate(result.parameters, TaskData(x_test[p], y_test[p])).metrics["accuracy"]
            for p in test_parts
            if len(p)
        ]
    )
    last = result.history[-1]
    worst10 = np.sort(each)[: int(np.ceil(0.1 * len(each)))].mean()
    assert last["accuracy_mean"] == pytest.approx(each.mean())
    assert last["accuracy_worst10"] == pytest.approx(worst10)
    assert last["accuracy_worst"] == pytest.approx(each.min())
    assert last["accuracy_spread"] == pytest.approx(each.max() - each.min())
    assert last["accuracy_std"] == pytest.approx(each.std())
    assert last["accuracy"] == pytest.approx(
        task.evaluate(result.parameters, TaskData(x_test, y_test)).metrics["accuracy"]
    )


@pytest.mark.database_free  # the simulator and source checks open no database
def test_evaluation_runs_every_n_rounds_and_after_the_last() -> None:
    task = DigitsLogReg()
    x, y = task.training_pool()
    result = simulate(
        task,
        x,
        y,
        data.iid(len(y), 10),
        FedAvg(),
        rounds=5,
        local={"epochs": 1, "batch_size": 0, "learning_rate": 0.5},
        test=task.public_test(),
        evaluate_every=2,
    )
    evaluated = [int(h["round"]) for h in result.history if "accuracy" in h]
    assert evaluated == [2, 4, 5]
    assert all(h["evaluation_seconds"] >= 0 for h in result.history if "accuracy" in h)
    assert all("evaluation_seconds" not in h for h in result.history if "accuracy" not in h)


@pytest.mark.database_free  # the simulator and source checks open no database
def test_no_domain_imports_a_shell() -> None:
    """The API and the CLI are shells over the domains; a domain that imported one (as the
    demo's federation step did to serve the hub) would turn the layering upside down."""
    shells = ("concord.api", "concord.cli")
    root = Path(concord.__file__).parent
    offenders = []
    for domain in ("governance", "federation", "commons", "members", "ledger", "impact"):
        for path in (root / domain).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                    if isinstance(node, ast.ImportFrom)
                    else []
                )
                if any(n == s or n.startswith(s + ".") for n in names for s in shells):
                    offenders.append(str(path.relative_to(root)))
    assert offenders == []
