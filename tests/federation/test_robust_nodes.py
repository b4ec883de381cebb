"""Robust aggregation with real `concord node` processes: one node cheats (the test-only
`--attack` option), the hub's Multi-Krum leaves its updates out, and records per member and
round why, in the round, its log entry, the API and the job page; the cheat is flagged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from sqlalchemy import select

from concord.events import Event
from concord.federation import data, jobs
from concord.federation.tables import Job, Round
from concord.federation.tasks.logreg import DigitsLogReg
from concord.governance.jobspec import JobSpec
from concord.ledger.tables import LogEntry
from concord.members import keys

pytestmark = pytest.mark.slow

MEMBERS = [("kenya", "KE"), ("brazil", "BR"), ("norway", "NO")]
CHEAT = "norway"


def _node(actor, slug: str, folder: Path, key_file: Path, url: str) -> subprocess.Popen[str]:
    attack = ["--attack", "scaling"] if slug == CHEAT else []
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from concord.cli import main; main()",
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
            "4",
            "--wait",
            "1",
            "--no-energy",
            *attack,
        ],
        env={**os.environ},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_a_cheating_node_is_left_out_and_told_why(
    live_server, make, sessions, settings, db, tmp_path
) -> None:
    # Prepare: three members' nodes on a Multi-Krum job (keep the 2 closest of 3); norway's
    # node boosts its update tenfold.
    actors = {slug: make.delegate(slug, code) for slug, code in MEMBERS}
    x, y, _xt, _yt = DigitsLogReg().split()
    parts = data.iid(len(x), len(MEMBERS), seed=1)
    spec = JobSpec.model_validate(
        {
            "task": "logreg-digits",
            "participants": {"members": [m for m, _c in MEMBERS]},
            "rounds": 3,
            "min_participants": 3,
            "round_deadline_s": 120,
            "strategy": {"name": "multi-krum", "params": {"byzantine": 1, "keep": 2}},
            "local": {"epochs": 1, "batch_size": 10, "learning_rate": 0.3},
        }
    )
    with sessions() as s:
        job_id = jobs.create_job(s, settings, spec, title="Digits").id
        s.commit()
    processes = []
    for (slug, _code), part in zip(MEMBERS, parts, strict=True):
        folder = tmp_path / "sites" / slug
        data.write_partition(folder, x[part], y[part])
        key_file = tmp_path / "keys" / f"{slug}.pem"
        keys.save_private(actors[slug].key, key_file)
        processes.append(_node(actors[slug], slug, folder, key_file, live_server))

    # Execute: the nodes work the job to its end.
    try:
        outputs = [p.communicate(timeout=240)[0] for p in processes]
    finally:
        for p in processes:
            p.kill()

    # Assert: every round left norway out, and says so with the numbers behind it.
    assert all(p.returncode == 0 for p in processes), outputs
    job = db.get(Job, job_id)
    db.refresh(job)
    assert job.status == "completed"
    closed = db.scalars(
        select(Round).where(Round.job_id == job_id, Round.status == "closed").order_by(Round.number)
    ).all()
    assert len(closed) == 3
    for row in closed:
        by_member = {rec["client"]: rec for rec in row.robustness}
        assert set(by_member) == {m for m, _c in MEMBERS}
        assert by_member[CHEAT]["action"] == "excluded"
        assert by_member[CHEAT]["reason"] == "krum-not-chosen"
        assert by_member["kenya"]["action"] == by_member["brazil"]["action"] == "kept"
        assert by_member[CHEAT]["norm"] > 5 * by_member["kenya"]["norm"]
    assert closed[-1].metrics["accuracy"] > 0.85  # the boosted updates did not get in
    entries = db.scalars(select(LogEntry).where(LogEntry.kind == "federation.round")).all()
    logged = [json.loads(e.body)["content"]["robustness"] for e in entries]
    assert [rec["action"] for rec in logged[0] if rec["client"] == CHEAT] == ["excluded"]
    api = httpx.get(f"{live_server}/api/federation/jobs/{job_id}").json()
    assert api["flagged"] == [CHEAT]
    assert api["rounds_detail"][0]["robustness"] == closed[0].robustness
    page = httpx.get(f"{live_server}/jobs/{job_id}").text
    assert "Flagged members" in page
    assert "Not among the 2 updates closest to the others (Krum)" in page
    flags = db.scalars(select(Event).where(Event.name == "federation.member_flagged")).all()
    assert [(e.payload["member"], e.payload["left_out"]) for e in flags] == [(CHEAT, 3)]
    assert np.isfinite([r.metrics["accuracy"] for r in closed]).all()
