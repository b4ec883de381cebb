"""Locust users of `benchmarks/load.py`: delegates, nodes and pullers over two hub ports.

The plan (JSON, path in `LOAD_PLAN`) says who the users are and what they act on. Each user
takes the next identity of its kind and one of the hubs in turn, so that the load is spread
evenly over both `concord serve` processes.

- Delegate: reads the proposals, one proposal, its statements and its opinion map, votes on
  statements, and casts ONE signed ballot (Ed25519, signed here as a delegate's client does)
  at a random moment of the ballot window; then only reads.
- Node: long-polls `GET /api/work?wait=…` for the whole run, as `concord node` does.
- Puller: runs a real `concord pull` subprocess of the model (gevent's cooperative subprocess)
  and reports it as one request named `concord pull`.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from locust import HttpUser, User, between, events, task

from concord.governance import ballots
from concord.members import keys

PLAN: dict[str, Any] = json.loads(Path(os.environ["LOAD_PLAN"]).read_text())
HUBS: list[str] = PLAN["hubs"]
BARE = PLAN["mode"] == "bare"
_delegates = itertools.count()
_nodes = itertools.count()
_pullers = itertools.count()
STARTED = time.monotonic()


class Delegate(HttpUser):
    fixed_count = len(PLAN["delegates"])
    wait_time = between(*PLAN["delegate_wait"])

    def on_start(self) -> None:
        i = next(_delegates)
        me = PLAN["delegates"][i]
        self.client.base_url = HUBS[i % len(HUBS)]
        self.slug = me["slug"]
        self.key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(me["key"]))
        self.client.headers["Authorization"] = f"Bearer {me['token']}"
        self.ref = PLAN["reference"]
        # Within the window, leaving its last fifth for the stragglers' retries.
        self.cast_at = STARTED + random.uniform(0, 0.8 * PLAN["window_s"])
        self.cast = False

    @task
    def act(self) -> None:
        if not self.cast and time.monotonic() >= self.cast_at:
            self.ballot()
            return
        choice = random.random()
        if choice < 0.25:
            self.client.get("/api/proposals", name="GET /api/proposals")
        elif choice < 0.45:
            self.client.get(f"/api/proposals/{self.ref}", name="GET /api/proposals/{ref}")
        elif choice < 0.55:
            self.client.get(
                f"/api/proposals/{self.ref}/statements", name="GET /api/proposals/{ref}/statements"
            )
        elif choice < 0.70:
            self.client.get(f"/api/proposals/{self.ref}/map", name="GET /api/proposals/{ref}/map")
        else:
            statement = random.choice(PLAN["statements"])
            self.client.post(
                f"/api/proposals/{self.ref}/statements/{statement}/votes",
                json={"vote": random.choice(("agree", "disagree", "pass"))},
                name="POST /api/proposals/{ref}/statements/{id}/votes",
            )

    def ballot(self) -> None:
        payload = ballots.make_payload(self.ref, self.slug, random.choice(("yes", "no", "abstain")))
        _record(PLAN["sent_file"], self.slug)  # sent: the hub may count it though we stop first
        body = {
            "ballots": [
                {"payload": payload, "signature": keys.sign(self.key, ballots.message(payload))}
            ]
        }
        sent_at = time.time()
        with self.client.post(
            f"/api/proposals/{self.ref}/ballots",
            json=body,
            name="POST /api/proposals/{ref}/ballots",
            catch_response=True,
        ) as answer:
            _timed(sent_at, answer.request_meta["response_time"], answer.status_code)
            if answer.status_code == 201:
                self.cast = True
                answer.success()
                _record(PLAN["cast_file"], self.slug)
            else:
                answer.failure(f"{answer.status_code}: {answer.text[:200]}")
                # One ballot each: a refused one is retried later in the window.
                self.cast_at = time.monotonic() + 5


def _record(path: str, slug: str) -> None:
    with open(path, "a") as out:
        out.write(slug + "\n")


def _timed(sent_at: float, milliseconds: float, status: int) -> None:
    """Each ballot's sending time, latency and status: load.py takes the steady state's p99
    from these (Locust's own percentiles cover the whole run, start-up included)."""
    with open(PLAN["ballot_times_file"], "a") as out:
        out.write(f"{sent_at:.3f} {milliseconds:.1f} {status}\n")


@events.spawning_complete.add_listener
def _spawned(user_count: int, **_kwargs: Any) -> None:
    Path(PLAN["spawned_file"]).write_text(f"{time.time():.3f}")


class Node(HttpUser):
    fixed_count = 0 if BARE else PLAN["nodes"]
    wait_time = between(0.5, 1.5)  # what `concord node` sleeps between empty polls

    def on_start(self) -> None:
        i = next(_nodes)
        me = PLAN["delegates"][i]
        self.client.base_url = HUBS[i % len(HUBS)]
        self.client.headers["Authorization"] = f"Bearer {me['token']}"

    @task
    def poll(self) -> None:
        with self.client.get(
            "/api/federation/work",
            params={"wait": PLAN["poll_s"]},
            name="GET /api/federation/work (long poll)",
            catch_response=True,
            timeout=PLAN["poll_s"] + 60,
        ) as answer:
            if answer.status_code in (200, 204):
                answer.success()
            else:
                answer.failure(f"{answer.status_code}: {answer.text[:200]}")


class Puller(User):
    fixed_count = 0 if BARE else PLAN["pullers"]
    wait_time = between(1, 2)

    def on_start(self) -> None:
        i = next(_pullers)
        self.hub = HUBS[i % len(HUBS)]
        self.done = 0

    @task
    def pull(self) -> None:
        if self.done >= PLAN["pulls_each"]:
            time.sleep(1)  # the pulls are done; stay out of the way until the run ends
            return
        folder = Path(tempfile.mkdtemp(prefix="concord-load-pull-", dir=PLAN["work"]))
        started = time.perf_counter()
        error: Exception | None = None
        try:
            command = [PLAN["concord"], "pull", PLAN["repo"], "--hub", self.hub]
            done = subprocess.run(
                [*command, "--to", str(folder), "--quiet"],
                capture_output=True,
                text=True,
                timeout=600,
            )
            size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
            if done.returncode != 0:
                error = RuntimeError(f"exit {done.returncode}: {done.stderr[-300:]}")
            elif size < PLAN["model_bytes"]:
                error = RuntimeError(f"pulled {size} bytes of {PLAN['model_bytes']}")
        except Exception as exc:  # reported to Locust as a failed pull
            error, size = exc, 0
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        self.done += 1
        events.request.fire(
            request_type="PULL",
            name="concord pull",
            response_time=(time.perf_counter() - started) * 1000,
            response_length=size,
            exception=error,
            context={},
        )
