"""Thin links: compressed updates (q8, top-k with error feedback), decoded at the hub before
aggregation; model downloads as a lossless, hash-verified difference from the node's model."""

from __future__ import annotations

import hashlib
import threading
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError
from sqlalchemy import select

from concord.client import HubClient
from concord.db import utcnow
from concord.federation import compression, data, delta, jobs
from concord.federation.node import Memory, fetch_model, run_node
from concord.federation.parameters import BadParameters, from_safetensors, to_safetensors
from concord.federation.tables import Job, Round, Update
from concord.federation.tasks.logreg import DigitsLogReg
from concord.governance.jobspec import (
    Compression,
    CompressionNeedsPlainUpdates,
    JobSpec,
    SparseNeedsMean,
)
from concord.members import keys

Q8 = Compression(kind="q8")
TOPK = Compression(kind="topk", fraction=0.05)


def _models(seed: int = 0) -> tuple[dict[str, Any], dict[str, Any]]:
    rng = np.random.default_rng(seed)
    start = {
        "w": (rng.normal(size=(64, 30)) * 0.1).astype(np.float32),
        "b": np.zeros(30, np.float32),
        "count": np.array([3], dtype=np.int64),  # not floating: travels whole
    }
    trained = {
        "w": start["w"] + (rng.normal(size=(64, 30)) * 0.01).astype(np.float32),
        "b": start["b"] + (rng.normal(size=30) * 0.01).astype(np.float32),
        "count": np.array([4], dtype=np.int64),
    }
    return start, trained


def test_q8_rebuilds_each_value_within_half_a_step() -> None:
    # Prepare
    start, trained = _models()
    # Execute
    message, residual = compression.encode(Q8, compression.difference(trained, start))
    body = to_safetensors(message)
    model = compression.decode(Q8, from_safetensors(body), start)
    # Assert: a quarter of the float bytes, each value within step / 2, the rest carried.
    step = float(message["w@step"][0])
    assert message["w"].dtype == np.uint8
    assert np.abs(model["w"] - trained["w"]).max() <= step / 2 + 1e-6
    np.testing.assert_allclose(residual["w"], trained["w"] - model["w"], atol=1e-6)
    assert model["count"][0] == 4 and model["w"].dtype == np.float32
    assert len(body) < 0.4 * len(to_safetensors(trained))


def test_topk_sends_the_largest_changes_and_carries_the_rest() -> None:
    # Prepare
    start, trained = _models()
    delta_w = trained["w"] - start["w"]
    k = compression.kept(delta_w.size, TOPK.share)
    # Execute
    message, residual = compression.encode(TOPK, compression.difference(trained, start))
    model = compression.decode(TOPK, message, start)
    # Assert: exactly k entries, the largest in magnitude; sent + residual = intended.
    assert message["w@index"].shape == (k,)
    smallest_sent = np.abs(message["w@value"]).min()
    unsent = np.delete(np.abs(delta_w).reshape(-1), message["w@index"].astype(np.int64))
    assert smallest_sent >= unsent.max()
    np.testing.assert_allclose((model["w"] - start["w"]) + residual["w"], delta_w, atol=1e-6)


def test_error_feedback_delivers_everything_over_rounds() -> None:
    # Prepare: the same delta intended ten times over.
    start, trained = _models(1)
    step = compression.difference(trained, start)
    residual = None
    sent = np.zeros_like(start["w"])
    # Execute
    for _ in range(10):
        message, residual = compression.encode(TOPK, step, residual)
        sent += compression.decode(TOPK, message, start)["w"] - start["w"]
    # Assert: what was sent plus what is still carried is all that was intended.
    assert residual is not None
    np.testing.assert_allclose(sent + residual["w"], 10 * step["w"], atol=1e-4)
    assert np.abs(residual["w"]).max() < np.abs(10 * step["w"]).max()


@pytest.mark.parametrize(
    "damage",
    [
        lambda m: m.pop("w@index"),
        lambda m: m.update({"w@index": m["w@index"][::-1].copy()}),  # out of order
        lambda m: m.update({"w@index": m["w@index"] + np.uint32(10_000)}),  # out of range
        lambda m: m.update({"w@value": m["w@value"] * np.float32("nan")}),
        lambda m: m.update({"w@value": m["w@value"].astype(np.float64)}),
    ],
)
def test_malformed_compressed_updates_are_refused(damage) -> None:
    # Prepare
    start, trained = _models()
    message, _residual = compression.encode(TOPK, compression.difference(trained, start))
    damage(message)
    # Execute / Assert
    with pytest.raises(BadParameters):
        compression.decode(TOPK, message, start)


def test_a_model_difference_is_lossless_and_bounded() -> None:
    # Prepare: a round that changed 5 % of the coordinates.
    start, _trained = _models()
    rng = np.random.default_rng(2)
    target = dict(start)
    target["w"] = start["w"] + np.where(rng.random(start["w"].shape) < 0.05, 0.01, 0).astype(
        np.float32
    )
    # Execute
    body = delta.encode(start, target)
    assert body is not None
    rebuilt = delta.apply(start, body)
    # Assert: bit for bit the target, and much smaller than it.
    assert to_safetensors(rebuilt) == to_safetensors(target)
    assert len(body) < 0.3 * len(to_safetensors(target))
    # A body that inflates past the model's size is refused, not inflated.
    bomb = zlib.compress(b"\0" * (sum(v.nbytes for v in start.values()) + 2 * delta.SLACK))
    with pytest.raises(BadParameters):
        delta.apply(start, bomb)
    assert delta.encode(start, {"w": start["w"]}) is None


def _spec(**extra: Any) -> dict[str, Any]:
    return {"task": "logreg-digits", "participants": {"members": ["kenya"]}, "rounds": 1, **extra}


def test_the_spec_refuses_what_cannot_work() -> None:
    # Execute / Assert: secure aggregation and compression together; top-k under a robust rule.
    with pytest.raises(CompressionNeedsPlainUpdates) as secagg:
        JobSpec.model_validate(
            _spec(compression={"kind": "q8"}, privacy={"secure_aggregation": True})
        )
    assert secagg.value.code == "proposal.compression_secagg"
    with pytest.raises(SparseNeedsMean) as sparse:
        JobSpec.model_validate(_spec(compression={"kind": "topk"}, strategy={"name": "median"}))
    assert sparse.value.code == "proposal.topk_strategy"
    with pytest.raises(ValidationError):
        JobSpec.model_validate(_spec(compression={"kind": "q8", "fraction": 0.1}))
    with pytest.raises(ValidationError):
        JobSpec.model_validate(_spec(compression={"kind": "topk", "fraction": 0.9}))
    # q8 is decoded before a robust rule sees it: allowed.
    spec = JobSpec.model_validate(_spec(compression={"kind": "q8"}, strategy={"name": "median"}))
    assert spec.compression == Q8


def test_a_proposal_with_compression_and_secagg_is_refused_with_its_code(client, make) -> None:
    # Prepare
    kenya = make.delegate("kenya", "KE")
    body = {
        "kind": "project",
        "title": "Thin links",
        "texts": {"en": "Digits, compressed."},
        "body": _spec(compression={"kind": "topk"}, privacy={"secure_aggregation": True}),
    }
    # Execute
    answer = client.post("/api/proposals", headers=kenya.headers, json=body)
    # Assert
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == "proposal.compression_secagg"


def _train(server: str, actors: dict[str, Any], folder: Path) -> None:
    x, y, _xt, _yt = DigitsLogReg().split()
    parts = data.iid(len(x), len(actors), seed=3)
    errors: list[BaseException] = []

    def node(slug: str, part: Any) -> None:
        site = folder / slug
        data.write_partition(site, x[part], y[part])
        keys.save_private(actors[slug].key, site / "key.pem")
        try:
            run_node(
                server,
                slug,
                site,
                actors[slug].token,
                site / "key.pem",
                energy=False,
                wait=1.0,
                idle_exit=2.0,
            )
        except BaseException as exc:  # surfaced in the test thread below
            errors.append(exc)

    threads = [
        threading.Thread(target=node, args=(slug, part), daemon=True)
        for slug, part in zip(actors, parts, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors


@pytest.mark.parametrize("squeeze", [{"kind": "q8"}, {"kind": "topk", "fraction": 0.2}])
def test_nodes_train_a_compressed_job_to_the_end(
    squeeze, live_server, make, sessions, settings, db, tmp_path
) -> None:
    # Prepare: two members' nodes, a three-round job whose updates travel compressed.
    actors = {slug: make.delegate(slug, code) for slug, code in [("kenya", "KE"), ("peru", "PE")]}
    spec = JobSpec.model_validate(
        {
            "task": "logreg-digits",
            "participants": {"members": list(actors)},
            "rounds": 3,
            "round_deadline_s": 120,
            "local": {"epochs": 2, "batch_size": 10, "learning_rate": 0.3},
            "compression": squeeze,
        }
    )
    with sessions() as s:
        job_id = jobs.create_job(s, settings, spec, title="Digits, compressed").id
        s.commit()
    # Execute
    _train(live_server, actors, tmp_path / "sites")
    # Assert: the job learned; each stored update is a whole model, its receipt the hash of
    # the compressed bytes the node signed; rounds 2 and 3 came down as differences.
    job = db.get(Job, job_id)
    db.refresh(job)
    assert job.status == "completed"
    rounds = db.scalars(select(Round).where(Round.job_id == job_id)).all()
    assert [r.status for r in rounds] == ["closed"] * 3
    assert rounds[-1].metrics["accuracy"] > 0.8
    root = jobs.folder(settings)
    start = from_safetensors((root / f"job-{job_id}/round-0.safetensors").read_bytes())
    for update in db.scalars(select(Update).join(Round).where(Round.job_id == job_id)):
        stored = from_safetensors((root / update.path).read_bytes())
        assert {k: v.shape for k, v in stored.items()} == {k: v.shape for k, v in start.items()}
        assert update.sha256 != hashlib.sha256((root / update.path).read_bytes()).hexdigest()
    cached = {p.name for p in (root / f"job-{job_id}" / "deltas").iterdir()}
    assert cached == {"round-0--round-1.zdelta", "round-1--round-2.zdelta"}


def _job_with_two_rounds(
    sessions: Any, settings: Any, member_id: int, change: Any
) -> tuple[int, Path, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """A job whose round 1 started from its initial model and round 2 from `change` applied to
    each tensor of it, both closed, inserted in one batch: its id, the jobs folder, and the
    two models."""
    spec = JobSpec.model_validate({**_spec(), "rounds": 3})
    with sessions() as s:
        job = jobs.create_job(s, settings, spec, title="Digits")
        job_id, root = job.id, jobs.folder(settings)
        first = from_safetensors((root / job.parameters).read_bytes())
        second = {k: change(v) for k, v in first.items()}
        (root / f"job-{job_id}/round-1.safetensors").write_bytes(to_safetensors(second))
        for number, path in ((1, job.parameters), (2, f"job-{job_id}/round-1.safetensors")):
            s.add(
                Round(
                    job_id=job_id,
                    number=number,
                    attempt=1,
                    status="closed",
                    participants=[member_id],
                    parameters=path,
                    deadline=utcnow(),
                    opened_at=utcnow(),
                    examples=0,
                    metrics={},
                    digest="",
                )
            )
        s.commit()
    return job_id, root, first, second


def test_a_node_fetches_a_verified_difference_or_the_whole_model(
    live_server, make, sessions, settings, client
) -> None:
    # Prepare: a job with two stored models (round 1 starts from round 0's, round 2 from a
    # changed one), as if round 1 had closed.
    kenya = make.delegate("kenya", "KE")
    job_id, _root, first, second = _job_with_two_rounds(
        sessions,
        settings,
        kenya.member.id,
        lambda v: v + np.float32(0.25) * (np.arange(v.size) % 7 == 0).reshape(v.shape),
    )
    url = f"/api/federation/jobs/{job_id}/rounds/2/parameters"
    # Execute: the raw route, then the node's fetch holding round 1's model.
    raw = client.get(url, params={"base": 1})
    memory = Memory(models={job_id: (1, first)})
    with HubClient(live_server, kenya.token) as hub:
        fetched = fetch_model(hub, job_id, 2, memory)
        # A node holding a base the hub never had gets the whole model.
        whole = client.get(url, params={"base": 9})
    # Assert
    expected = hashlib.sha256(to_safetensors(second)).hexdigest()
    assert raw.headers["X-Concord-Delta-Base"] == "1"
    assert raw.headers["X-Concord-Sha256"] == expected
    assert len(raw.content) < len(to_safetensors(second)) / 2
    assert hashlib.sha256(to_safetensors(fetched)).hexdigest() == expected
    assert memory.models[job_id][0] == 2
    assert "X-Concord-Delta-Base" not in whole.headers
    assert hashlib.sha256(whole.content).hexdigest() == expected


def test_a_difference_that_does_not_verify_is_never_trained_on(
    live_server, make, sessions, settings
) -> None:
    # Prepare: the hub's cached difference is wrong (rebuilds a model that is not round 2's).
    kenya = make.delegate("kenya", "KE")
    job_id, root, first, second = _job_with_two_rounds(
        sessions, settings, kenya.member.id, lambda v: v + np.float32(0.5)
    )
    wrong = delta.encode(first, {k: v - np.float32(1) for k, v in first.items()})
    assert wrong is not None
    cache = root / f"job-{job_id}" / "deltas" / "round-0--round-1.zdelta"
    cache.parent.mkdir(parents=True)
    cache.write_bytes(wrong)
    memory = Memory(models={job_id: (1, first)})
    # Execute
    with HubClient(live_server, kenya.token) as hub:
        fetched = fetch_model(hub, job_id, 2, memory)
    # Assert: the node fell back to the whole model, which verifies.
    assert to_safetensors(fetched) == to_safetensors(second)


def test_the_simulator_counts_and_compresses_what_each_client_sends() -> None:
    # Prepare: the digits over 10 clients, all training every round.
    from concord.federation.simulation import Wire, simulate
    from concord.federation.strategies.fedavg import FedAvg

    task = DigitsLogReg()
    x, y, x_test, y_test = task.split()
    parts = data.iid(len(x), 10, seed=0)
    local = {"epochs": 1, "batch_size": 10, "learning_rate": 0.3}

    def run(squeeze: Compression | None) -> list[dict[str, float]]:
        wire = Wire(squeeze)
        result = simulate(
            task, x, y, parts, FedAvg(), rounds=4, local=local, test=(x_test, y_test), wire=wire
        )
        return result.history

    # Execute
    plain, q8 = run(None), run(Q8)
    # Assert: q8 sends about a quarter of the bytes and learns as well; from round 2 on each
    # client fetches a difference from the model it holds, smaller than the whole model.
    assert q8[0]["update_bytes"] < 0.4 * plain[0]["update_bytes"]
    assert q8[-1]["accuracy"] > plain[-1]["accuracy"] - 0.05
    assert plain[1]["download_bytes"] < plain[0]["download_bytes"]
    assert plain[1]["download_bytes"] == plain[1]["download_bytes_from_previous"]


def test_concord_simulate_counts_bytes_under_compression(cli_env) -> None:
    # Prepare
    import json

    from typer.testing import CliRunner

    from concord.cli import app

    runner = CliRunner()
    common = ["simulate", "--clients", "10", "--rounds", "2", "--json"]
    # Execute
    plain = runner.invoke(app, [*common, "--compression", "none"])
    sparse = runner.invoke(app, [*common, "--compression", "topk", "--fraction", "0.1"])
    wrong = runner.invoke(app, [*common, "--compression", "q8", "--fraction", "0.1"])
    # Assert: top-k at 10 % sends under half the plain bytes (the header weighs on a model of
    # 650 parameters); q8 takes no fraction.
    assert plain.exit_code == 0 and sparse.exit_code == 0, plain.output + sparse.output
    up = [json.loads(r.output)[0]["update_bytes"] for r in (plain, sparse)]
    assert up[1] < 0.5 * up[0]
    assert wrong.exit_code == 2


def test_the_hub_refuses_a_malformed_compressed_update_and_logs_it(
    client, make, sessions, settings, db
) -> None:
    # Prepare: a q8 job's round open for kenya; a whole (uncompressed) model, and a q8
    # message whose codes have the wrong shape.
    from sqlalchemy import func
    from tests.federation.test_deployment import _post_update, register

    from concord.ledger.tables import LogEntry

    kenya = make.delegate("kenya", "KE")
    spec = JobSpec.model_validate(
        {**_spec(), "rounds": 2, "min_participants": 1, "compression": {"kind": "q8"}}
    )
    with sessions() as s:
        job_id = jobs.create_job(s, settings, spec, title="Digits, q8").id
        s.commit()
    assert register(client, kenya).status_code == 200
    work = client.get("/api/federation/work", headers=kenya.headers).json()
    assert work["config"]["compression"] == {"kind": "q8", "fraction": None}
    start = DigitsLogReg().init_parameters(job_id)
    trained = {k: v + np.float32(0.01) for k, v in start.items()}
    message, _residual = compression.encode(Q8, compression.difference(trained, start))
    damaged = {**message, "weight": message["weight"][:1]}
    # Execute
    whole = _post_update(client, kenya, job_id, 1, trained)
    malformed = _post_update(client, kenya, job_id, 1, damaged)
    good = _post_update(client, kenya, job_id, 1, message)
    # Assert: both refused with the code, and logged (signed by a chosen member); the good
    # message is taken and the round closes on the model it stands for.
    for answer in (whole, malformed):
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["code"] == "federation.bad_parameters"
    assert good.status_code == 201, good.text
    refused = db.scalar(
        select(func.count())
        .select_from(LogEntry)
        .where(LogEntry.kind == "federation.update_refused")
    )
    assert refused == 2
    row = db.scalars(select(Round).where(Round.job_id == job_id, Round.number == 1)).one()
    assert row.status == "closed"
    aggregate = from_safetensors(
        (jobs.folder(settings) / f"job-{job_id}/round-1.safetensors").read_bytes()
    )
    np.testing.assert_allclose(aggregate["weight"], trained["weight"], atol=1e-4)
