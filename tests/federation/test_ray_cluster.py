"""`concord simulate --backend ray --address …` on a Ray cluster of two raylets on this machine
(a head and a second node joined to it, one CPU each) gives the local backend's result, at
100,000 clients with small rounds.

The raylets are started with `ray start --block` in their own process groups and stopped by
those groups' ids, not with `ray stop`, which would stop every Ray process of this user on a
machine others share."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

# `concord simulate` opens no database: the PostgreSQL pass need not repeat this.
pytestmark = [pytest.mark.slow, pytest.mark.database_free]

RAY = Path(sys.executable).parent / "ray"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _raylet(*args: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(RAY), "start", "--block", "--num-cpus=1", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped by that group's id
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def _simulate(env: dict[str, str], *extra: str) -> list[dict[str, float]]:
    done = subprocess.run(
        [
            *(sys.executable, "-c", "from concord.cli import main; main()", "simulate"),
            *("--task", "logreg-mnist", "--clients", "100000", "--per-round", "200"),
            *("--rounds", "2", "--batch-size", "0", "--json", *extra),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    history: list[dict[str, float]] = json.loads(done.stdout)
    return history


def test_a_two_raylet_cluster_gives_the_local_result() -> None:
    if not RAY.exists():
        pytest.skip("the Ray backend is optional: pip install 'concord[ray]'")
    # Prepare: a head and a second node, each with one CPU; Ray's files in a short folder
    # of our own (its sockets' paths must stay short).
    folder = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    port = _port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    head = _raylet(
        "--head",
        f"--port={port}",
        f"--temp-dir={folder}",
        "--include-dashboard=false",
        env=env,
        log=Path(folder) / "head.log",
    )
    second: subprocess.Popen[bytes] | None = None
    try:
        address = f"127.0.0.1:{port}"
        _wait_for_nodes(1, address, env)  # the head must be up before a node can join it
        second = _raylet(f"--address={address}", env=env, log=Path(folder) / "second.log")
        _wait_for_nodes(2, address, env)

        # Execute: the same simulation on the cluster and in this process.
        spread = _simulate(env, "--backend", "ray", "--address", address)
        local = _simulate(env)
    finally:
        if second is not None:
            _stop(second)
        _stop(head)
        for log in ("head.log", "second.log"):
            if (Path(folder) / log).exists():
                sys.stderr.write((Path(folder) / log).read_text()[-3000:])
        shutil.rmtree(folder, ignore_errors=True)

    # Assert: round by round the same clients, loss and accuracy.
    assert [h["clients"] for h in spread] == [h["clients"] for h in local] == [200, 200]
    for there, here in zip(spread, local, strict=True):
        assert there["loss"] == pytest.approx(here["loss"], rel=1e-5)
        assert there["accuracy"] == pytest.approx(here["accuracy"], abs=1e-4)


def _wait_for_nodes(count: int, address: str, env: dict[str, str]) -> None:
    probe = (
        "import ray, sys; ray.init(address=sys.argv[1], log_to_driver=False); "
        "print(sum(1 for n in ray.nodes() if n['Alive']))"
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done = subprocess.run(
            [sys.executable, "-c", probe, address],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.stdout.strip().endswith(str(count)):
            return
        time.sleep(2)
    raise AssertionError(f"the cluster did not reach {count} live nodes")
