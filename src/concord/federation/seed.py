"""Demo step: the adopted project's job, trained by real `concord node` processes — one per
participating member, each with its own partition on disk — against this hub served for the
occasion on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import uvicorn
from sqlalchemy import select

from concord.errors import N_
from concord.federation import data
from concord.federation.tables import Job
from concord.federation.tasks.logreg import DigitsLogReg
from concord.governance.jobspec import JobSpec
from concord.members.tables import Member
from concord.seeding import World

STEP = N_("A federated job across member nodes")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed(world: World) -> None:
    with world.sessions() as db:
        job = db.scalars(select(Job).where(Job.status == "running").order_by(Job.id)).first()
        if job is None:
            return  # no adopted project waiting, or its job has run already
        spec = JobSpec.model_validate(job.spec)
        members = {m.slug: m for m in db.scalars(select(Member)).all()}
        slugs = [s for s in spec.participants.members if s in members]
        job_id = job.id
    tokens = world.facts.get("tokens", {})
    x, y, _xt, _yt = DigitsLogReg().split()
    parts = data.dirichlet(y, len(slugs), alpha=1.0, seed=7)
    sites = world.settings.data_dir / "nodes"
    for slug, part in zip(slugs, parts, strict=True):
        data.write_partition(sites / slug, x[part], y[part])
    from concord.api import create_app

    port = _port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(world.settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    hub = f"http://127.0.0.1:{port}"
    try:
        # Our own interpreter and arguments we build: no untrusted input.
        nodes = [
            subprocess.Popen(  # noqa: S603
                [
                    sys.executable,
                    "-c",
                    "from concord.cli import main; main()",
                    "node",
                    "--member",
                    slug,
                    "--data",
                    str(sites / slug),
                    "--hub",
                    hub,
                    "--token",
                    tokens[slug],
                    "--key-file",
                    str(world.keys_dir / f"{slug}.pem"),
                    "--idle-exit",
                    "5",
                ],
                env={**os.environ},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for slug in slugs
        ]
        for node in nodes:
            node.wait(timeout=600)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    with world.sessions() as db:
        job = db.get(Job, job_id)
        if job is not None:
            world.notes.append(
                f"Federated job “{job.title}”: {job.rounds_done} rounds by {len(slugs)} member "
                f"nodes, {job.status} — see /jobs/{job.id}."
            )
