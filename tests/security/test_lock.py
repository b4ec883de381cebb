"""Hostile error-page requests cannot lock the database (issue #13, item 1).

A real Uvicorn on 127.0.0.1 serves ~50 requests a second for ~10 s to error pages with made-up
session cookies, while a delegate keeps posting statements (an authenticated, logged write).

What this test guards is the fault the review found: an error page that took the write lock
made every write behind it wait for SQLite's 30 s busy timeout (or fail). So every write must
succeed, none may come near that wait, and their p99 must stay within a bound that a slow
machine cannot break but a lock wait would: the larger of 1 s and five times the p99 of the
same writes measured just before, without the attack. The issue's figure (p99 under 250 ms)
is a performance target, and performance targets are measured side by side in benchmarks,
not timed in unit tests: `benchmarks/hostile.py` measures it on a quiet machine. Here, CI's
second test worker shares the two cores and once pushed an attacked p99 to 308 ms with no
lock involved.

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
BASELINE_SECONDS = 4.0
HOSTILE_PER_S = 50
P99_FLOOR_S = 1.0
BASELINE_FACTOR = 5.0
LONGEST_S = 5.0  # a sixth of the 30 s busy timeout a lock wait would reach
ROOT = Path(__file__).parent.parent.parent


def start_attack(base: str) -> subprocess.Popen[str]:
    """Starts the attacker and returns once it has imported what it needs and begins: on a
    busy machine its interpreter takes seconds to start, which the attack's duration must not
    include."""
    code = (
        "import json, sys; from tests.security.attack import attack; "
        "print('ready', flush=True); "
        f"print(json.dumps(attack({base!r}, {SECONDS}, {HOSTILE_PER_S})))"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    return process


def p99(latencies: list[float]) -> float:
    return sorted(latencies)[max(0, int(len(latencies) * 0.99) - 1)]


def write_for(
    http: httpx.Client, actor: Any, ref: str, seconds: float, tag: str
) -> tuple[list[float], list[int]]:
    """A write every 50 ms for `seconds`: each one's latency and status."""
    latencies: list[float] = []
    statuses: list[int] = []
    ends = time.monotonic() + seconds
    for n in range(int(seconds * 20)):  # bounded
        if time.monotonic() > ends:
            break
        started = time.perf_counter()
        statuses.append(say(http, actor, ref, f"Statement {tag} {n}").status_code)
        latencies.append(time.perf_counter() - started)
        time.sleep(0.05)
    return latencies, statuses


def test_writes_stay_quick_under_hostile_error_pages(live_server: str, make: Any) -> None:
    # Prepare: how long the writes take on this machine now, with no attack
    kenya = make.delegate("kenya", "KE")
    with httpx.Client(base_url=live_server, timeout=30) as http:
        ref = open_deliberation(http, kenya)
        calm, calm_statuses = write_for(http, kenya, ref, BASELINE_SECONDS, "calm")
        attack = start_attack(live_server)
        # Execute: a write every 50 ms while the attack runs
        try:
            time.sleep(0.2)  # the attacker's threads open their connections
            latencies, statuses = write_for(http, kenya, ref, SECONDS - 1.0, "attacked")
        finally:
            output, _ = attack.communicate(timeout=60)
        answered: dict[str, int] = json.loads(output.strip().splitlines()[-1])
        listed = http.get(f"/api/proposals/{ref}/statements")
    # Assert
    assert statuses and set(statuses) == set(calm_statuses) == {201}
    assert len(listed.json()) == len(statuses) + len(calm_statuses)
    assert sum(answered.values()) >= SECONDS * HOSTILE_PER_S * 0.5, "the attack did not run"
    assert set(answered) == {"404"}, answered
    assert max(latencies) < LONGEST_S, f"a write took {max(latencies):.1f} s: it waited on a lock"
    bound = max(P99_FLOOR_S, BASELINE_FACTOR * p99(calm))
    assert p99(latencies) < bound, (
        f"p99 {p99(latencies) * 1000:.0f} ms over {len(latencies)} writes under attack; "
        f"{p99(calm) * 1000:.0f} ms with none"
    )
