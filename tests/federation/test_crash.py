"""Crash safety with real processes: a hub (`concord serve`, real Uvicorn) killed with SIGKILL
during a round and started again resumes from the last completed round, loses no completed round
and counts no update twice; a killed node loses only its own round.

Nodes are either direct HTTP clients (to place a kill exactly between two updates) or real
`concord node` processes."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import pytest
from sqlalchemy import func, select

from concord.federation import data, jobs
from concord.federation.parameters import TensorFile, digest, from_safetensors, to_safetensors
from concord.federation.strategies import make_strategy
from concord.federation.strategies.base import StoredUpdate
from concord.federation.tables import Job, Round, Update
from concord.federation.tasks.logreg import DigitsLogReg
from concord.governance.jobspec import JobSpec
from concord.ledger.tables import LogEntry
from concord.members import keys

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-c", "from concord.cli import main; main()"]
MEMBERS = [("kenya", "KE"), ("brazil", "BR"), ("norway", "NO")]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Hub:
    """`concord serve` in a subprocess, on a fixed port so that it comes back at the same URL."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Hub:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [*CLI, "serve", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"the hub did not start: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, open transactions are cut."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()


@pytest.fixture
def hub_env(cli_env: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **cli_env}


@pytest.fixture
def hub(hub_env: dict[str, str], tmp_path: Path) -> Iterator[Hub]:
    server = Hub(hub_env, tmp_path / "hub.log").start()
    yield server
    server.stop()


def _spec(strategy: str = "fedavgm", **overrides: object) -> JobSpec:
    return JobSpec.model_validate(
        {
            "task": "logreg-digits",
            "participants": {"members": [m for m, _c in MEMBERS]},
            "rounds": 3,
            "min_participants": 3,
            "round_deadline_s": 120,
            "strategy": {"name": strategy},
            "local": {"epochs": 1, "batch_size": 10, "learning_rate": 0.3},
            **overrides,
        }
    )


def _create(sessions, settings, spec: JobSpec) -> int:
    with sessions() as s:
        job = jobs.create_job(s, settings, spec, title="Digits")
        s.commit()
        return job.id


def _partitions() -> dict[str, np.ndarray]:
    x, _y, _xt, _yt = DigitsLogReg().split()
    parts = data.iid(len(x), len(MEMBERS), seed=1)
    return {slug: part for (slug, _c), part in zip(MEMBERS, parts, strict=True)}


@dataclass
class DirectNode:
    """A member's node as plain HTTP calls, so a test can stop between any two of them."""

    actor: object
    part: np.ndarray
    url: str

    @property
    def slug(self) -> str:
        return self.actor.member.slug  # type: ignore[attr-defined]

    def call(self, method: str, path: str, **kwargs) -> httpx.Response:
        headers = {**self.actor.headers, **kwargs.pop("headers", {})}  # type: ignore[attr-defined]
        return httpx.request(method, self.url + path, headers=headers, timeout=60, **kwargs)

    def register(self) -> None:
        when = datetime.now(UTC).isoformat()
        tasks = ["logreg-digits"]
        signature = keys.sign(
            self.actor.key,  # type: ignore[attr-defined]
            jobs.registration_message(self.slug, tasks, when),
        )
        answer = self.call(
            "POST",
            "/api/federation/nodes",
            json={"tasks": tasks, "signed_at": when, "signature": signature},
        )
        assert answer.status_code == 200, answer.text

    def train(self) -> tuple[dict, bytes]:
        """Asks for work and trains it; returns the work and the update's body."""
        work = self.call("GET", "/api/federation/work", params={"wait": 10})
        assert work.status_code == 200, work.text
        w = work.json()
        params = from_safetensors(
            self.call("GET", f"/api/federation/jobs/{w['job']}/rounds/{w['round']}/parameters")
            .raise_for_status()
            .content
        )
        x, y, _xt, _yt = DigitsLogReg().split()
        task = DigitsLogReg()
        result = task.train(params, data_of(x[self.part], y[self.part]), w["config"])
        return w, to_safetensors(result.parameters)

    def send(self, work: dict, body: bytes) -> httpx.Response:
        examples = len(self.part)
        sha = hashlib.sha256(body).hexdigest()
        message = jobs.update_message(work["job"], work["round"], self.slug, sha, examples)
        return self.call(
            "POST",
            f"/api/federation/jobs/{work['job']}/rounds/{work['round']}/updates",
            content=body,
            headers={
                "X-Concord-Examples": str(examples),
                "X-Concord-Signature": keys.sign(self.actor.key, message),  # type: ignore[attr-defined]
                "X-Concord-Metrics": json.dumps({}),
            },
        )


def data_of(x: np.ndarray, y: np.ndarray):
    from concord.federation.tasks.base import TaskData

    return TaskData(x, y)


def _direct_nodes(make, url: str) -> dict[str, DirectNode]:
    parts = _partitions()
    nodes = {}
    for slug, code in MEMBERS:
        node = DirectNode(make.delegate(slug, code), parts[slug], url)
        node.register()
        nodes[slug] = node
    return nodes


def _replayed_digests(db, settings, job_id: int, strategy_name: str) -> list[str]:
    """Every closed round aggregated again in one process by one strategy object from the
    stored updates: what a hub that never stopped would have computed."""
    job = db.get(Job, job_id)
    strategy = make_strategy(JobSpec.model_validate(job.spec).strategy)
    assert strategy.name == strategy_name
    params = jobs.read_parameters(settings, f"job-{job_id}/round-0.safetensors")
    digests = []
    rounds = db.scalars(
        select(Round).where(Round.job_id == job_id, Round.status == "closed").order_by(Round.number)
    ).all()
    for row in rounds:
        rows = db.scalars(
            select(Update).where(Update.round_id == row.id).order_by(Update.member_id)
        ).all()
        files = [TensorFile(jobs.folder(settings) / u.path) for u in rows]
        stored = [StoredUpdate(f, u.examples, str(u.member_id)) for f, u in zip(files, rows)]
        params = strategy.aggregate_stored(row.number, params, stored)
        for f in files:
            f.close()
        digests.append(digest(params))
    return digests


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _settled(read, quiet: float, timeout: float):
    """The value `read` returns once it has not changed for `quiet` seconds."""
    deadline = time.monotonic() + timeout
    value, since = read(), time.monotonic()
    while time.monotonic() - since < quiet:
        if time.monotonic() > deadline:
            raise AssertionError(f"still changing after {timeout} s: {value!r}")
        time.sleep(0.2)
        now = read()
        if now != value:
            value, since = now, time.monotonic()
    return value


def _rounds(db, job_id: int) -> list[Round]:
    return list(db.scalars(select(Round).where(Round.job_id == job_id).order_by(Round.id)).all())


def test_hub_killed_mid_round_resumes_and_counts_each_update_once(
    hub, make, sessions, settings, db
) -> None:
    # Prepare: a FedAvgM job (server momentum) and three nodes; round 1 completes.
    job_id = _create(sessions, settings, _spec("fedavgm"))
    nodes = _direct_nodes(make, hub.url)
    for node in nodes.values():
        work, body = node.train()
        assert node.send(work, body).status_code == 201
    assert db.get(Job, job_id).rounds_done == 1

    # Execute: in round 2, two updates are accepted, then the hub is killed and restarted.
    trained = {slug: node.train() for slug, node in nodes.items()}
    assert {w["round"] for w, _b in trained.values()} == {2}
    for slug in ("kenya", "brazil"):
        assert nodes[slug].send(*trained[slug]).status_code == 201
    hub.kill()
    hub.start()
    again = nodes["kenya"].send(*trained["kenya"])  # its answer "was lost": it sends again
    last = nodes["norway"].send(*trained["norway"])
    late_again = nodes["brazil"].send(*trained["brazil"])  # after the round closed
    # Round 3 with a kill between the last update's commit and anything else.
    for slug, node in nodes.items():
        work, body = node.train()
        assert node.send(work, body).status_code == 201
        if slug == "brazil":
            hub.kill()
            hub.start()

    # Assert: clear answers, every round once, every update once, the same numbers as a hub
    # that never stopped (FedAvgM's momentum came back from its checkpoint).
    assert again.status_code == 200 and again.json()["repeated"] is True
    assert last.status_code == 201 and last.json()["repeated"] is False
    assert late_again.status_code == 200 and late_again.json()["repeated"] is True
    job = db.get(Job, job_id)
    db.refresh(job)
    assert job.status == "completed" and job.rounds_done == 3
    rounds = _rounds(db, job_id)
    assert [(r.number, r.attempt, r.status) for r in rounds] == [
        (1, 1, "closed"),
        (2, 1, "closed"),
        (3, 1, "closed"),
    ]
    sizes = sum(len(n.part) for n in nodes.values())
    for row in rounds:
        count = db.scalar(select(func.count()).select_from(Update).where(Update.round_id == row.id))
        assert count == 3 and row.examples == sizes
    logged = db.scalar(
        select(func.count()).select_from(LogEntry).where(LogEntry.kind == "federation.round")
    )
    assert logged == 3
    assert job.server_state.endswith("round-3.server.safetensors")
    assert _replayed_digests(db, settings, job_id, "fedavgm") == [r.digest for r in rounds]
    assert not list((jobs.folder(settings) / f"job-{job_id}" / "incoming").iterdir())


def test_round_past_its_deadline_is_closed_when_the_hub_comes_back(
    hub, make, sessions, settings, db
) -> None:
    # Prepare: two of three updates are in when the hub dies; the deadline passes while down.
    job_id = _create(
        sessions, settings, _spec("fedavg", min_participants=2, round_deadline_s=5, rounds=2)
    )
    nodes = _direct_nodes(make, hub.url)
    trained = {slug: node.train() for slug, node in nodes.items()}
    for slug in ("kenya", "brazil"):
        assert nodes[slug].send(*trained[slug]).status_code == 201
    hub.kill()
    opened = _rounds(db, job_id)[0].opened_at
    time.sleep(max(0.0, 5.5 - (datetime.now(UTC) - opened).total_seconds()))

    # Execute: the hub starts again; no node asks anything.
    hub.start()
    _wait_for(lambda: db.get(Job, job_id, populate_existing=True).rounds_done == 1, 20, "close")
    late = nodes["norway"].send(*trained["norway"])

    # Assert: round 1 closed with the two updates it had; the late one is refused and logged.
    first = _rounds(db, job_id)[0]
    assert first.status == "closed" and first.examples == sum(
        len(nodes[s].part) for s in ("kenya", "brazil")
    )
    assert late.status_code == 409
    assert late.json()["error"]["code"] == "federation.round_closed"
    refused = db.scalars(select(LogEntry).where(LogEntry.kind == "federation.update_refused")).all()
    assert len(refused) == 1


def _node_process(
    actor, slug: str, folder: Path, key_file: Path, url: str, log: Path, idle_exit: int = 3
) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                *CLI,
                "node",
                "--member",
                slug,
                "--data",
                str(folder),
                "--hub",
                url,
                "--token",
                actor.token,
                "--key-file",
                str(key_file),
                "--idle-exit",
                str(idle_exit),
                "--wait",
                "1",
                "--no-energy",
            ],
            env={**os.environ},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _sites(make, tmp_path: Path) -> dict[str, tuple[object, Path, Path]]:
    x, y, _xt, _yt = DigitsLogReg().split()
    sites = {}
    for slug, code in MEMBERS:
        actor = make.delegate(slug, code)
        folder = tmp_path / "sites" / slug
        data.write_partition(folder, x[_partitions()[slug]], y[_partitions()[slug]])
        key_file = tmp_path / "keys" / f"{slug}.pem"
        keys.save_private(actor.key, key_file)
        sites[slug] = (actor, folder, key_file)
    return sites


def test_real_nodes_ride_out_a_hub_killed_mid_job(hub, make, sessions, settings, db, tmp_path):
    # Prepare: three `concord node` processes on a FedAdam job of six rounds.
    sites = _sites(make, tmp_path)
    job_id = _create(sessions, settings, _spec("fedadam", rounds=6))
    logs = {slug: tmp_path / f"{slug}.log" for slug in sites}
    processes = [
        _node_process(actor, slug, folder, key, hub.url, logs[slug])
        for slug, (actor, folder, key) in sites.items()
    ]
    try:
        # Execute: kill the hub once two rounds are done, keep it down a moment, restart it.
        _wait_for(lambda: db.get(Job, job_id, populate_existing=True).rounds_done >= 2, 120, "r2")
        hub.kill()
        time.sleep(2)
        hub.start()
        for p in processes:
            p.wait(timeout=180)
    finally:
        for p in processes:
            p.kill()
    outputs = {slug: log.read_text() for slug, log in logs.items()}

    # Assert: the nodes survived (exit 0), the job completed, each round closed exactly once
    # with each node's update once, and the numbers equal an uninterrupted hub's.
    assert all(p.returncode == 0 for p in processes), outputs
    job = db.get(Job, job_id)
    db.refresh(job)
    assert job.status == "completed" and job.rounds_done == 6
    closed = [r for r in _rounds(db, job_id) if r.status == "closed"]
    assert [r.number for r in closed] == [1, 2, 3, 4, 5, 6]
    for row in closed:
        members = db.scalars(select(Update.member_id).where(Update.round_id == row.id)).all()
        assert len(members) == len(set(members)) == 3
    assert _replayed_digests(db, settings, job_id, "fedadam") == [r.digest for r in closed]


def test_a_killed_node_loses_only_its_own_round(hub, make, sessions, settings, db, tmp_path):
    # Prepare: three nodes; two suffice for a round, which waits at most 8 s for the third.
    sites = _sites(make, tmp_path)
    job_id = _create(
        sessions, settings, _spec("fedavg", rounds=4, min_participants=2, round_deadline_s=8)
    )
    logs = {slug: tmp_path / f"{slug}.log" for slug in sites}
    norway = sites["norway"][0].member.id  # type: ignore[attr-defined]

    def start(slug: str) -> subprocess.Popen[bytes]:
        actor, folder, key = sites[slug]
        return _node_process(actor, slug, folder, key, hub.url, logs[slug])

    def done() -> int:
        return db.get(Job, job_id, populate_existing=True).rounds_done

    def sent() -> int | None:  # the last round norway's node delivered
        return db.scalar(
            select(func.max(Round.number))
            .join(Update, Update.round_id == Round.id)
            .where(Round.job_id == job_id, Update.member_id == norway)
        )

    processes = {slug: start(slug) for slug in sites}
    try:
        # Execute: once norway's node has delivered a round, it is killed; the next round is
        # the one it loses; it comes back once that round has closed without it.
        _wait_for(lambda: sent() is not None, 120, "norway's first update")
        processes["norway"].kill()
        processes["norway"].wait(timeout=10)
        # An update whose body had reached the hub before the kill is still stored after it;
        # what norway delivered is only known once nothing more arrives.
        delivered = _settled(sent, quiet=3.0, timeout=30)
        assert delivered is not None
        lost = delivered + 1
        _wait_for(lambda: done() >= min(lost, 4), 60, "the lost round")
        processes["norway"] = start("norway")
        for p in processes.values():
            p.wait(timeout=120)
    finally:
        for p in processes.values():
            p.kill()

    # Assert: the job completed; the lost round closed at its deadline with the two others;
    # no round was lost for anyone else.
    job = db.get(Job, job_id)
    db.refresh(job)
    assert job.status == "completed"
    closed = [r for r in _rounds(db, job_id) if r.status == "closed"]
    assert [r.number for r in closed] == [1, 2, 3, 4]
    per_round = {
        r.number: set(db.scalars(select(Update.member_id).where(Update.round_id == r.id)).all())
        for r in closed
    }
    assert norway in per_round[delivered]
    if lost <= 4:
        assert norway not in per_round[lost] and len(per_round[lost]) == 2
    # (A round opens once two nodes have registered, so the third may not be chosen for it.)
    assert all(set(r.participants) - {norway} <= per_round[r.number] for r in closed)


def test_a_node_stays_while_its_job_waits_on_a_slower_partner(
    hub, make, sessions, settings, db, tmp_path
):
    # Prepare: a one-round job of kenya and brazil; kenya runs `concord node` with a 1 s
    # --idle-exit; brazil's node is plain HTTP calls, so the test decides when it delivers.
    sites = _sites(make, tmp_path)
    spec = _spec("fedavg", rounds=1, min_participants=2)
    spec = spec.model_copy(
        update={
            "participants": spec.participants.model_copy(update={"members": ["kenya", "brazil"]})
        }
    )
    job_id = _create(sessions, settings, spec)
    brazil = DirectNode(sites["brazil"][0], _partitions()["brazil"], hub.url)
    brazil.register()
    actor, folder, key = sites["kenya"]
    kenya = _node_process(actor, "kenya", folder, key, hub.url, tmp_path / "kenya.log", 1)
    kenya_id = actor.member.id  # type: ignore[attr-defined]
    try:
        # Execute: kenya delivers; brazil holds back for four idle limits; then delivers.
        _wait_for(
            lambda: (
                db.scalar(
                    select(func.count())
                    .select_from(Update)
                    .join(Round, Update.round_id == Round.id)
                    .where(Round.job_id == job_id, Update.member_id == kenya_id)
                )
                == 1
            ),
            60,
            "kenya's update",
        )
        time.sleep(4)
        still_there = kenya.poll() is None
        work, body = brazil.train()
        assert brazil.send(work, body).status_code == 201
        kenya.wait(timeout=30)
    finally:
        kenya.kill()
    log = (tmp_path / "kenya.log").read_text()

    # Assert: kenya waited for its partner instead of leaving, then left once the job was done.
    assert still_there, log
    assert kenya.returncode == 0, log
    job = db.get(Job, job_id, populate_existing=True)
    assert job.status == "completed"
