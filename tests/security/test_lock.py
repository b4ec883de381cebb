"""Hostile error-page requests cannot lock the database (issue #13, item 1).

A real Uvicorn on 127.0.0.1 serves ~50 requests a second for ~10 s to error pages with made-up
session cookies, while a delegate keeps posting statements (an authenticated, logged write).
The issue asks for this bound explicitly: every write succeeds and the 99th percentile of
their latency stays under 250 ms.

The attack runs in a process of its own, so that its client work does not compete with the
server (a thread of this process) for the interpreter lock: the test measures the hub.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.security.helpers import open_deliberation, say

pytestmark = pytest.mark.slow

SECONDS = 10.0
HOSTILE_PER_S = 50
P99_BOUND_S = 0.250
ROOT = Path(__file__).parent.parent.parent


def start_attack(base: str) -> subprocess.Popen[str]:
    code = (
        "import json, sys; from tests.security.attack import attack; "
        f"print(json.dumps(attack({base!r}, {SECONDS}, {HOSTILE_PER_S})))"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )


def test_writes_stay_quick_under_hostile_error_pages(live_server: str, make: Any) -> None:
    # Prepare
    kenya = make.delegate("kenya", "KE")
    with httpx.Client(base_url=live_server, timeout=30) as http:
        ref = open_deliberation(http, kenya)
        attack = start_attack(live_server)
        # Execute: a write every 50 ms while the attack runs
        latencies: list[float] = []
        statuses: list[int] = []
        try:
            time.sleep(0.5)  # the attacker's interpreter starts
            ends = time.monotonic() + SECONDS - 1.0
            for n in range(int(SECONDS * 20)):  # bounded
                if time.monotonic() > ends:
                    break
                started = time.perf_counter()
                statuses.append(say(http, kenya, ref, f"Statement {n}").status_code)
                latencies.append(time.perf_counter() - started)
                time.sleep(0.05)
        finally:
            output, _ = attack.communicate(timeout=60)
        answered: dict[str, int] = json.loads(output.strip().splitlines()[-1])
        listed = http.get(f"/api/proposals/{ref}/statements")
    # Assert
    assert statuses and set(statuses) == {201}
    assert len(listed.json()) == len(statuses)
    assert sum(answered.values()) >= SECONDS * HOSTILE_PER_S * 0.5, "the attack did not run"
    assert set(answered) == {"404"}, answered
    p99 = sorted(latencies)[max(0, int(len(latencies) * 0.99) - 1)]
    assert p99 < P99_BOUND_S, f"p99 {p99 * 1000:.0f} ms over {len(latencies)} writes"
