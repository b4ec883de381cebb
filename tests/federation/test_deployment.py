"""A job trained by real `concord node` processes against a real hub on 127.0.0.1, and the
hub's refusals of bad updates."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from concord.federation import data, jobs
from concord.federation.parameters import to_safetensors
from concord.federation.stats import contributions
from concord.federation.tables import Job, Round
from concord.federation.tasks.logreg import DigitsLogReg
from concord.governance.jobspec import JobSpec
from concord.ledger.tables import LogEntry
from concord.members import keys


def _spec(members: list[str], rounds: int = 3) -> JobSpec:
    return JobSpec.model_validate(
        {
            "task": "logreg-digits",
            "participants": {"members": members},
            "rounds": rounds,
            "min_participants": len(members),
            "round_deadline_s": 120,
            "local": {"epochs": 1, "batch_size": 10, "learning_rate": 0.3},
        }
    )


def _site(tmp_path: Path, actor, slug: str, part: np.ndarray) -> tuple[Path, Path]:
    x, y, _xt, _yt = DigitsLogReg().split()
    folder = tmp_path / "sites" / slug
    data.write_partition(folder, x[part], y[part])
    key_file = tmp_path / "keys" / f"{slug}.pem"
    keys.save_private(actor.key, key_file)
    return folder, key_file


def test_real_nodes_train_a_job_to_completion(
    live_server, make, sessions, settings, db, tmp_path
) -> None:
    members = [("kenya", "KE"), ("brazil", "BR"), ("norway", "NO")]
    actors = {slug: make.delegate(slug, code) for slug, code in members}
    x, _y, _xt, _yt = DigitsLogReg().split()
    parts = data.iid(len(x), len(members), seed=1)
    with sessions() as s:
        job = jobs.create_job(s, settings, _spec([m for m, _c in members]), title="Digits")
        s.commit()
        job_id = job.id
    processes = []
    for (slug, _code), part in zip(members, parts, strict=True):
        folder, key_file = _site(tmp_path, actors[slug], slug, part)
        processes.append(
            subprocess.Popen(
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
                    live_server,
                    "--token",
                    actors[slug].token,
                    "--key-file",
                    str(key_file),
                    "--idle-exit",
                    "4",
                    *(["--no-energy"] if slug != "kenya" else []),
                ],
                env={**os.environ},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    try:
        outputs = [p.communicate(timeout=240)[0] for p in processes]
    finally:
        for p in processes:
            p.kill()
    assert all(p.returncode == 0 for p in processes), outputs
    job = db.get(Job, job_id)
    db.refresh(job)
    assert job.status == "completed" and job.rounds_done == 3
    closed = db.scalars(
        select(Round).where(Round.job_id == job_id, Round.status == "closed").order_by(Round.number)
    ).all()
    assert [r.number for r in closed] == [1, 2, 3]
    assert closed[-1].metrics["accuracy"] > 0.85
    assert (
        db.scalar(
            select(func.count()).select_from(LogEntry).where(LogEntry.kind == "federation.round")
        )
        == 3
    )
    per_member = contributions(db)
    assert sum(v["examples"] for v in per_member.values()) == 3 * len(x)
    kenya = actors["kenya"].member.id
    assert per_member[kenya]["energy_kwh"] >= 0.0


def register(client, actor, tasks=("logreg-digits",), signed_at=None, key=None):
    """Registers the actor's node, signed as `concord node` does."""
    when = signed_at or datetime.now(UTC).isoformat()
    message = jobs.registration_message(actor.member.slug, list(tasks), when)
    return client.post(
        "/api/federation/nodes",
        json={
            "tasks": list(tasks),
            "signed_at": when,
            "signature": keys.sign(key or actor.key, message),
        },
        headers=actor.headers,
    )


def test_registration_proves_the_members_key(client, make, db) -> None:
    a = make.delegate("kenya", "KE")
    b = make.delegate("brazil", "BR")
    unsigned = client.post(
        "/api/federation/nodes", json={"tasks": ["logreg-digits"]}, headers=a.headers
    )
    stale = register(client, a, signed_at=(datetime.now(UTC) - timedelta(hours=1)).isoformat())
    forged = register(client, a, key=b.key)
    cases = [
        (unsigned, "federation.registration_unsigned"),
        (stale, "federation.registration_stale"),
        (forged, "signature.invalid"),
        (client.get("/api/federation/work", headers=a.headers), "federation.node_unregistered"),
    ]
    for response, code in cases:
        assert response.status_code in (409, 422), response.text
        assert response.json()["error"]["code"] == code
    answer = register(client, a)
    assert answer.status_code == 200
    assert answer.json()["key"] == keys.fingerprint(
        keys.parse_public_key(keys.public_base64(a.key))
    )
    assert client.get("/api/federation/work", headers=a.headers).status_code == 204


def _post_update(client, actor, job_id, number, params, *, examples=10, signature=None):
    body = to_safetensors(params)
    sha = hashlib.sha256(body).hexdigest()
    message = jobs.update_message(job_id, number, actor.member.slug, sha, examples)
    return client.post(
        f"/api/federation/jobs/{job_id}/rounds/{number}/updates",
        content=body,
        headers={
            **actor.headers,
            "X-Concord-Examples": str(examples),
            "X-Concord-Signature": signature or keys.sign(actor.key, message),
            "X-Concord-Metrics": json.dumps({}),
        },
    )


def test_bad_updates_are_refused_and_logged(client, make, sessions, settings, db) -> None:
    a = make.delegate("kenya", "KE")
    b = make.delegate("brazil", "BR")
    outsider = make.delegate("peru", "PE")
    with sessions() as s:
        job = jobs.create_job(s, settings, _spec(["kenya", "brazil"], rounds=2), title="Digits")
        s.commit()
        job_id = job.id
    for actor in (a, b, outsider):
        assert register(client, actor).status_code == 200
    work = client.get("/api/federation/work", headers=a.headers)
    assert work.status_code == 200 and work.json()["round"] == 1
    good = DigitsLogReg().init_parameters(0)
    nan = {k: v.copy() for k, v in good.items()}
    nan["bias"][0] = np.nan
    wrong_shape = {"weight": np.zeros((3, 3), np.float32), "bias": good["bias"]}
    cases = [
        (_post_update(client, outsider, job_id, 1, good), "federation.not_selected"),
        (_post_update(client, a, job_id, 1, nan), "federation.bad_parameters"),
        (_post_update(client, a, job_id, 1, wrong_shape), "federation.bad_parameters"),
        (
            _post_update(client, a, job_id, 1, good, signature=keys.sign(b.key, b"x")),
            "signature.invalid",
        ),
        (_post_update(client, a, job_id, 2, good), "federation.round_closed"),
    ]
    for response, code in cases:
        assert response.status_code in (403, 409, 422), response.text
        assert response.json()["error"]["code"] == code
    assert _post_update(client, a, job_id, 1, good).status_code == 201
    again = _post_update(client, a, job_id, 1, good)  # the answer was lost: the same receipt
    assert again.status_code == 200 and again.json()["repeated"] is True
    other = {k: v + 1 for k, v in good.items()}
    assert (
        _post_update(client, a, job_id, 1, other).json()["error"]["code"]
        == "federation.duplicate_update"
    )
    refusals = db.scalar(
        select(func.count())
        .select_from(LogEntry)
        .where(LogEntry.kind == "federation.update_refused")
    )
    # Logged: the participant's signed refusals (two malformed bodies, the duplicate). Not
    # logged: the outsider's, the badly signed one, and one for a round Kenya was not chosen in.
    assert refusals == 3
    assert _post_update(client, b, job_id, 1, good).status_code == 201
    # Both in: round 1 closed, round 2 open. Resending the counted update gets its receipt;
    # another update for round 1 comes too late and is refused, not mixed in.
    assert _post_update(client, b, job_id, 1, good).json()["repeated"] is True
    late = _post_update(client, b, job_id, 1, other)
    assert late.json()["error"]["code"] == "federation.round_closed"
    with sessions() as s:
        assert s.get(Job, job_id).rounds_done == 1


@pytest.mark.parametrize("policy", ['tasks = ["mnist-cnn"]\n', 'projects = ["CP-2099-9"]\n'])
def test_site_policy_declines(policy, tmp_path) -> None:
    from concord.federation.node import SitePolicy

    path = tmp_path / "policy.toml"
    path.write_text(policy)
    rules = SitePolicy.read(path)
    assert not rules.allows({"task": "logreg-digits", "reference": "CP-2026-1"})
    assert SitePolicy().allows({"task": "logreg-digits", "reference": "CP-2026-1"})


def test_idle_time_counts_only_empty_answers(monkeypatch) -> None:
    """A node's --idle-exit counts the hub's "no work" answers in a row; time while the hub
    was unreachable (a restart) starts the count again, so the node does not quit on return."""
    from concord.errors import HubUnreachable
    from concord.federation import node

    clock = [100.0]
    monkeypatch.setattr(node.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(node.time, "sleep", lambda s: clock.__setitem__(0, clock[0] + s))
    idle = node.Idle(3.0)
    assert not idle.expired()  # the first empty answer starts the count
    clock[0] += 2.0
    assert not idle.expired()
    # The hub goes away for 10 s: the node keeps retrying, and the count starts again.
    attempts = iter([HubUnreachable(url="h", reason="down")] * 3 + [None])

    def poll() -> None:
        outcome = next(attempts)
        if outcome is not None:
            clock[0] += 3.0
            raise outcome

    node.retrying(poll, on_failure=idle.reset)
    assert not idle.expired()  # back, and no work yet: not idle for long
    clock[0] += 3.5
    assert idle.expired()
    assert not node.Idle(None).expired()  # no limit: never
