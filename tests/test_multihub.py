"""Two hub processes on one database: no state outside the database and the store."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"hub at {url} exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/healthz").status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not start")


@pytest.fixture
def two_hubs(cli_env: dict[str, str]) -> Iterator[tuple[str, str]]:
    env = {**os.environ, **cli_env}
    processes, urls = [], []
    for _ in range(2):
        port = _port()
        command = [
            sys.executable,
            "-c",
            "from concord.cli import main; main()",
            "serve",
            "--port",
            str(port),
        ]
        processes.append(subprocess.Popen(command, env=env))
        urls.append(f"http://127.0.0.1:{port}")
    try:
        for url, process in zip(urls, processes, strict=True):
            _wait(url, process)
        yield urls[0], urls[1]
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=20)


def test_two_hubs_share_one_database(two_hubs: tuple[str, str], make, db) -> None:
    a, b = two_hubs
    staff = make.secretariat()
    kenya = make.delegate("kenya", "KE")
    for i, hub in enumerate([a, b, a, b]):
        r = httpx.post(
            f"{hub}/api/members",
            headers=staff.headers,
            json={"slug": f"lab-{i}", "name": f"Lab {i}", "kind": "lab", "country": "FR"},
        )
        assert r.status_code == 201, r.text
    assert len(httpx.get(f"{a}/api/members").json()) == len(httpx.get(f"{b}/api/members").json())
    # A browser signed in on one hub is signed in on the other: sessions live in the database.
    with httpx.Client(base_url=a) as on_a:
        csrf = re.search(r'name="csrf" value="([^"]+)"', on_a.get("/sign-in").text).group(1)
        r = on_a.post("/sign-in", data={"csrf": csrf, "token": kenya.token, "next": "/"})
        assert r.status_code == 303
        cookies = dict(on_a.cookies)
    page = httpx.get(f"{b}/members", cookies=cookies)
    assert "Delegate" in page.text
    # Concurrent logged writes through both hubs keep the log gap-free.
    import concurrent.futures

    def admit(n: int) -> int:
        hub = a if n % 2 else b
        return httpx.post(
            f"{hub}/api/members",
            headers=staff.headers,
            timeout=60,
            json={"slug": f"u-{n}", "name": f"U {n}", "kind": "university", "country": "BR"},
        ).status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        assert set(pool.map(admit, range(16))) == {201}
    from sqlalchemy import select

    from concord.ledger.tables import LogEntry

    indices = db.scalars(select(LogEntry.index).order_by(LogEntry.index)).all()
    assert list(indices) == list(range(len(indices)))
