"""One real `concord node` behind a 256 kbit/s link: a throttling TCP proxy on 127.0.0.1
between it and the hub. With top-k updates and model differences, each round of the MNIST 2NN
(199,210 parameters, 797 KB as float32) closes within its deadline; uncompressed, the same
round would also carry the whole model up again, 25 s more of the link per round."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from concord.federation import data, jobs
from concord.federation.tables import Job, Round, Update
from concord.governance.jobspec import JobSpec
from concord.members import keys

pytestmark = pytest.mark.slow

LINK_BITS_S = 256_000
DEADLINE_S = 60  # a whole model down takes 25 s of the link; PyTorch's import a few more


class Throttle:
    """A TCP proxy that lets LINK_BITS_S through in each direction, shared by every connection
    (one link, however many requests the node opens), and counts the bytes it carried."""

    def __init__(self, target: int, bits_per_s: int) -> None:
        self.target = target
        self.rate = bits_per_s / 8  # bytes a second
        self.carried = {"up": 0, "down": 0}
        self.free_at = {"up": 0.0, "down": 0.0}
        self.loop = asyncio.new_event_loop()
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._connect, "127.0.0.1", 0)
        )
        self.port = self.server.sockets[0].getsockname()[1]
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    async def _connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hub_reader, hub_writer = await asyncio.open_connection("127.0.0.1", self.target)
        await asyncio.gather(
            self._pump(reader, hub_writer, "up"),
            self._pump(hub_reader, writer, "down"),
            return_exceptions=True,
        )

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, way: str
    ) -> None:
        try:
            while chunk := await reader.read(2048):
                now = self.loop.time()
                self.free_at[way] = max(now, self.free_at[way]) + len(chunk) / self.rate
                await asyncio.sleep(self.free_at[way] - now)
                writer.write(chunk)
                await writer.drain()
                self.carried[way] += len(chunk)
        finally:
            writer.close()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


def _node(actor: Any, folder: Path, key_file: Path, url: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from concord.cli import main; main()",
            "node",
            "--member",
            "kenya",
            "--data",
            str(folder),
            "--hub",
            url,
            "--token",
            actor.token,
            "--key-file",
            str(key_file),
            "--idle-exit",
            "4",
            "--wait",
            "5",
            "--no-energy",
        ],
        env={**os.environ},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_a_round_over_a_256_kbit_link_closes_within_its_deadline(
    live_server, make, sessions, settings, db, tmp_path
) -> None:
    # Prepare: a two-round MNIST 2NN job with top-k updates (1 %), one member's node whose
    # every byte to and from the hub goes through the 256 kbit/s proxy.
    kenya = make.delegate("kenya", "KE")
    spec = JobSpec.model_validate(
        {
            "task": "mnist-2nn",
            "participants": {"members": ["kenya"]},
            "rounds": 2,
            "min_participants": 1,
            "round_deadline_s": DEADLINE_S,
            "evaluate_every": 0,
            "local": {"epochs": 1, "batch_size": 10, "learning_rate": 0.1},
            "compression": {"kind": "topk", "fraction": 0.01},
        }
    )
    with sessions() as s:
        job_id = jobs.create_job(s, settings, spec, title="2NN over a thin link").id
        s.commit()
    rng = np.random.default_rng(0)
    site = tmp_path / "kenya"
    data.write_partition(
        site, rng.integers(0, 256, (300, 784), dtype=np.uint8), rng.integers(0, 10, 300)
    )
    keys.save_private(kenya.key, tmp_path / "kenya.pem")
    model_bytes = (jobs.folder(settings) / f"job-{job_id}/round-0.safetensors").stat().st_size
    link = Throttle(int(live_server.rsplit(":", 1)[1]), LINK_BITS_S)

    # Execute
    started = time.monotonic()
    node = _node(kenya, site, tmp_path / "kenya.pem", f"http://127.0.0.1:{link.port}")
    try:
        output = node.communicate(timeout=4 * DEADLINE_S)[0]
    finally:
        node.kill()
        link.close()
    elapsed = time.monotonic() - started

    # Assert: both rounds closed on their first attempt, each before its deadline; the second
    # (a difference down, top-k up) in a fraction of the first (the whole model down).
    assert node.returncode == 0, output
    job = db.get(Job, job_id)
    db.refresh(job)
    assert job.status == "completed", output
    rounds = db.scalars(select(Round).where(Round.job_id == job_id).order_by(Round.id)).all()
    assert [(r.number, r.attempt, r.status) for r in rounds] == [(1, 1, "closed"), (2, 1, "closed")]
    took = [(r.closed_at - r.opened_at).total_seconds() for r in rounds]
    assert all(t < DEADLINE_S for t in took), took
    assert took[1] < took[0] / 3, took
    assert len(db.scalars(select(Update)).all()) == 2
    # The link really was thin: the whole model took most of the first round to come down.
    assert took[0] > 0.8 * model_bytes * 8 / LINK_BITS_S, took
    # What went up: two top-k updates, a few % of one model (uncompressed, each round would
    # also carry the whole model up: another 25 s of this link, per round).
    assert link.carried["up"] < 0.1 * model_bytes, link.carried
    print(f"rounds took {took} s; carried {link.carried}; whole run {elapsed:.1f} s")
    print("\n".join(line for line in output.splitlines() if "round trained" in line))
