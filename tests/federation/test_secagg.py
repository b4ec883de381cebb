"""SecAgg+: Shamir shares, masks that cancel, quantisation, the spec's refusals, and a round
run by real `concord node` processes over HTTP."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select
from tests.federation.test_crash import CLI, Hub

from concord.federation import data, jobs
from concord.federation.node import DIE_AT
from concord.federation.privacy import secagg
from concord.federation.strategies import make_strategy
from concord.federation.tables import Job, Round, SecAggMessage, Update
from concord.federation.tasks.logreg import DigitsLogReg
from concord.governance.jobspec import JobSpec, SecureAggregationNeedsMean
from concord.ledger.tables import LogEntry
from concord.members import keys


def test_shamir_any_t_of_n_give_the_secret_and_fewer_do_not() -> None:
    # Prepare
    secret = secagg.to_int(secrets.token_bytes(32))
    shares = secagg.split(secret, range(1, 8), threshold=4)
    # Execute
    from_four = secagg.reconstruct({x: shares[x] for x in (2, 3, 5, 7)})
    from_seven = secagg.reconstruct(shares)
    from_three = secagg.reconstruct({x: shares[x] for x in (1, 4, 6)})
    # Assert
    assert from_four == secret and from_seven == secret
    assert from_three != secret


def test_shamir_refuses_bad_holders() -> None:
    with pytest.raises(ValueError):
        secagg.split(5, [1, 1, 2], threshold=2)
    with pytest.raises(ValueError):
        secagg.split(5, [1, 2], threshold=3)


@pytest.mark.parametrize(
    ("clients", "num_shares", "threshold", "dropped"),
    [(6, 0, 0, []), (10, 4, 2, [2, 7]), (9, 0, 0, [1, 5, 9])],
)
def test_masks_cancel_exactly(
    clients: int, num_shares: int, threshold: int, dropped: list[int]
) -> None:
    # Prepare: known inputs mod 2^32
    rng = np.random.default_rng(1)
    inputs = {
        i: rng.integers(0, secagg.MODULUS, size=50, dtype=np.uint32) for i in range(1, clients + 1)
    }
    # Execute
    result = secagg.simulate_round(
        inputs, num_shares=num_shares, threshold=threshold, drop_after_shares=dropped, seed=3
    )
    # Assert: the survivors' sum, exactly
    expected = np.zeros(50, dtype=np.uint32)
    for i in result.survivors:
        expected += inputs[i]
    assert sorted(result.survivors) == [i for i in inputs if i not in dropped]
    assert np.array_equal(result.total, expected)


def test_a_masked_input_alone_looks_nothing_like_the_input() -> None:
    mine = secagg.ClientSecrets()
    other = secagg.ClientSecrets()
    publics = {1: mine.public(), 2: other.public()}
    value = np.arange(100, dtype=np.uint32)
    y = secagg.mask(1, mine, value, publics, [2], "c")
    assert np.count_nonzero(y == value) < 3


def test_too_few_shares_fail() -> None:
    inputs = {i: np.ones(5, dtype=np.uint32) for i in range(1, 6)}
    with pytest.raises(ValueError, match="needed"):
        secagg.simulate_round(inputs, num_shares=0, threshold=4, drop_after_shares=[1, 2])


def test_quantisation_round_trip_within_the_bound() -> None:
    # Prepare: deltas of 5 clients with weights, clipped range 0.5
    rng = np.random.default_rng(7)
    deltas = [rng.uniform(-0.7, 0.7, size=1000) for _ in range(5)]
    weights = [30, 7, 120, 55, 1]
    clip_range = 0.5
    scale = secagg.scale_for(clip_range, sum(weights))
    # Execute
    total = np.zeros(1000, dtype=np.uint32)
    for d, w in zip(deltas, weights, strict=True):
        total += secagg.quantise(d, clip_range, scale, w, rng)
    mean = secagg.dequantise(total, scale, sum(weights))
    # Assert: within 1/S of the exact weighted mean of the clipped deltas
    exact = sum(np.clip(d, -clip_range, clip_range) * w for d, w in zip(deltas, weights)) / sum(
        weights
    )
    assert np.max(np.abs(mean - exact)) <= 1 / scale
    assert np.max(np.abs(mean - exact)) > 0  # quantised, not passed through


def test_neighbourhoods_are_regular_and_symmetric() -> None:
    graph = secagg.neighbours(range(1, 21), 6, seed=5)
    assert all(len(v) == 6 for v in graph.values())
    assert all(i in graph[j] for i, near in graph.items() for j in near)


@pytest.mark.parametrize("strategy", ["median", "trimmed-mean", "krum", "multi-krum"])
def test_spec_refuses_strategies_that_need_each_update(strategy: str) -> None:
    body = {
        "task": "logreg-digits",
        "participants": {"members": ["kenya"]},
        "rounds": 1,
        "strategy": {"name": strategy},
        "privacy": {"secure_aggregation": True},
    }
    with pytest.raises(SecureAggregationNeedsMean) as caught:
        JobSpec.model_validate(body)
    assert caught.value.code == "proposal.secagg_strategy"
    body["strategy"] = {"name": "fedadam"}
    body["privacy"] = {"secure_aggregation": {"num_shares": 4, "threshold": 3}}
    spec = JobSpec.model_validate(body)
    assert spec.privacy.secagg is not None and spec.privacy.secagg.threshold == 3


def test_a_proposal_with_secagg_and_krum_gets_the_coded_error(client, make) -> None:
    # Prepare
    delegate = make.delegate("kenya", "KE")
    # Execute
    answer = client.post(
        "/api/proposals",
        headers=delegate.headers,
        json={
            "kind": "project",
            "title": "Digits, robust and secret",
            "texts": {"en": "x"},
            "body": {
                "task": "logreg-digits",
                "participants": {"members": ["kenya"]},
                "min_participants": 1,
                "rounds": 1,
                "strategy": {"name": "krum"},
                "privacy": {"secure_aggregation": True},
            },
        },
    )
    # Assert
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == "proposal.secagg_strategy"


# --- real `concord node` processes ----------------------------------------------------------


def _sites(make, tmp_path: Path, slugs: list[tuple[str, str]]) -> dict[str, Any]:
    x, y, _xt, _yt = DigitsLogReg().split()
    parts = data.iid(len(x), len(slugs), seed=1)
    sites = {}
    for (slug, code), part in zip(slugs, parts, strict=True):
        actor = make.delegate(slug, code)
        folder = tmp_path / "sites" / slug
        data.write_partition(folder, x[part], y[part])
        key_file = tmp_path / "keys" / f"{slug}.pem"
        keys.save_private(actor.key, key_file)
        sites[slug] = (actor, folder, key_file)
    return sites


def _start(site: Any, slug: str, url: str, log: Path, die: bool) -> subprocess.Popen[bytes]:
    actor, folder, key_file = site
    env = {**os.environ}
    if die:
        env[DIE_AT] = "after-shares"
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                *CLI,
                *("node", "--member", slug, "--data", str(folder), "--hub", url),
                *("--token", actor.token, "--key-file", str(key_file), "--idle-exit", "3"),
                *("--wait", "1", "--no-energy"),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _spec(slugs: list[str], **secure: Any) -> JobSpec:
    return JobSpec.model_validate(
        {
            "task": "logreg-digits",
            "participants": {"members": slugs},
            "rounds": 1,
            "min_participants": len(slugs),
            "round_deadline_s": 60,
            "strategy": {"name": "fedavg"},
            "local": {"epochs": 1, "batch_size": 10, "learning_rate": 0.3},
            "privacy": {"secure_aggregation": {"clip_range": 4.0, **secure}},
        }
    )


def _wait(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def hub(cli_env: dict[str, str], tmp_path: Path) -> Any:
    server = Hub({**os.environ, **cli_env}, tmp_path / "hub.log").start()
    yield server
    server.stop()


EIGHT = [
    ("kenya", "KE"),
    ("brazil", "BR"),
    ("norway", "NO"),
    ("india", "IN"),
    ("ghana", "GH"),
    ("chile", "CL"),
    ("vietnam", "VN"),
    ("peru", "PE"),
]


def _expected_updates(
    settings, job_id: int, row: Round, sites: dict[str, Any], db
) -> dict[int, tuple[Any, int]]:
    """Each node's trained parameters, recomputed here as the node computes them."""
    task = DigitsLogReg()
    start = jobs.read_parameters(settings, row.parameters)
    spec = JobSpec.model_validate(db.get(Job, job_id).spec)
    out = {}
    for actor, folder, _key in sites.values():
        member_id = actor.member.id
        config = make_strategy(spec.strategy).configure(row.number, spec.local.model_dump())
        config["seed"] = int(
            np.random.SeedSequence([job_id, row.number, member_id]).generate_state(1)[0]
        )
        result = task.train(start, task.load_data(folder), config)
        out[member_id] = (result.parameters, result.num_examples)
    return out


def _hub_bytes(settings, tmp_path: Path, db) -> bytes:
    """Everything the hub keeps: every file of its data dir, its log, and its DB rows."""
    blobs = [p.read_bytes() for p in Path(settings.data_dir).rglob("*") if p.is_file()]
    blobs += [p.read_bytes() for p in tmp_path.glob("hub*.log")]
    for table in (Update, SecAggMessage, Round, LogEntry):
        for row in db.scalars(select(table)).all():
            blobs.append(repr({k: v for k, v in vars(row).items() if k[0] != "_"}).encode())
    return b"\n".join(blobs)


@pytest.mark.slow
def test_eight_real_nodes_two_dropping_after_sharing_keys(
    hub, make, sessions, settings, db, tmp_path
):
    # Prepare: eight nodes; two kill themselves (SIGKILL) right after sending their shares.
    sites = _sites(make, tmp_path, EIGHT)
    with sessions() as s:
        job_id = jobs.create_job(
            s, settings, _spec([m for m, _c in EIGHT]), title="Secret digits"
        ).id
        s.commit()
    dying = {"ghana", "peru"}
    processes = {
        slug: _start(site, slug, hub.url, tmp_path / f"{slug}.log", slug in dying)
        for slug, site in sites.items()
    }
    try:
        # Execute
        _wait(lambda: db.get(Job, job_id, populate_existing=True).rounds_done >= 1, 240, "round 1")
        for p in processes.values():
            p.wait(timeout=120)
    finally:
        for p in processes.values():
            p.kill()

    # Assert: the round closed with the six survivors' updates
    logs = {slug: (tmp_path / f"{slug}.log").read_text() for slug in sites}
    assert all(processes[s].returncode == -signal.SIGKILL for s in dying), logs
    assert all(processes[s].returncode == 0 for s in sites if s not in dying), logs
    row = db.scalars(select(Round).where(Round.job_id == job_id)).one()
    assert row.status == "closed"
    survivors = {sites[s][0].member.id for s in sites if s not in dying}
    masked = db.scalars(select(Update).where(Update.round_id == row.id)).all()
    assert {u.member_id for u in masked} == survivors
    # ...its aggregate is the survivors' example-weighted mean within the quantisation bound
    expected = _expected_updates(settings, job_id, row, sites, db)
    start = jobs.read_parameters(settings, row.parameters)
    weights = {i: n for i, (_p, n) in expected.items()}
    total_weight = sum(weights.values())  # every node advertised its weight in stage 1
    scale = secagg.scale_for(4.0, total_weight)
    surviving = sum(weights[i] for i in survivors)
    job = db.get(Job, job_id)
    db.refresh(job)
    result = jobs.read_parameters(settings, job.parameters)
    for name, value in start.items():
        mean = (
            sum(
                np.clip(expected[i][0][name].astype(np.float64) - value, -4, 4) * weights[i]
                for i in survivors
            )
            / surviving
        )
        gap = np.max(np.abs(result[name].astype(np.float64) - (value + mean)))
        assert gap <= 1 / scale + 1e-6, name
    # ...and nothing the hub keeps holds any node's update in clear.
    kept = _hub_bytes(settings, tmp_path, db)
    for member_id, (params, _n) in expected.items():
        for name, tensor in params.items():
            assert tensor.astype(np.float32).tobytes()[:64] not in kept
            delta = tensor.astype(np.float64) - start[name]
            assert delta.tobytes()[:64] not in kept
            assert repr(float(tensor.ravel()[3])).encode() not in kept
    entries = db.scalars(select(LogEntry).where(LogEntry.kind == "federation.round")).all()
    assert json.loads(entries[-1].body)["content"]["secure_aggregation"] == {
        "survivors": 6,
        "dropped": 2,
    }


@pytest.mark.slow
def test_a_round_below_threshold_fails_cleanly_and_is_tried_again(
    hub, make, sessions, settings, db, tmp_path
):
    # Prepare: four nodes, t = 3; two die after sharing keys, leaving two.
    four = EIGHT[:4]
    sites = _sites(make, tmp_path, four)
    with sessions() as s:
        spec = _spec([m for m, _c in four], threshold=3)
        job_id = jobs.create_job(s, settings, spec, title="Too few").id
        s.commit()
    dying = {"kenya", "brazil"}
    processes = {
        slug: _start(site, slug, hub.url, tmp_path / f"{slug}.log", slug in dying)
        for slug, site in sites.items()
    }
    try:
        # Execute
        def failed() -> bool:
            rows = db.scalars(
                select(Round)
                .where(Round.job_id == job_id)
                .execution_options(populate_existing=True)
            ).all()
            return any(r.status == "failed" for r in rows)

        _wait(failed, 240, "the failed round")
    finally:
        for p in processes.values():
            p.kill()

    # Assert: the attempt failed, was logged with its reason, and nothing was aggregated
    rows = db.scalars(select(Round).where(Round.job_id == job_id).order_by(Round.id)).all()
    assert rows[0].status == "failed" and rows[0].digest == ""
    entry = db.scalars(select(LogEntry).where(LogEntry.kind == "federation.secagg_failed")).one()
    assert json.loads(entry.body)["content"]["survivors"] == 2
    assert "threshold" in json.loads(entry.body)["content"]["reason"]
    job = db.get(Job, job_id)
    db.refresh(job)
    assert job.rounds_done == 0 and job.status == "running"


def test_the_simulator_runs_secagg_and_lands_where_the_plain_mean_does() -> None:
    # Prepare
    from concord.federation.privacy import mechanism
    from concord.federation.simulation import simulate
    from concord.governance.jobspec import DifferentialPrivacy, SecureAggregation, StrategySpec

    task = DigitsLogReg()
    x, y, _xt, _yt = task.split()
    parts = data.iid(len(y), 12, seed=0)
    common = {
        "rounds": 1,
        "local": {"epochs": 1, "batch_size": 10, "learning_rate": 0.3},
    }
    secure = SecureAggregation(num_shares=6, clip_range=4.0)
    # Execute
    plain = simulate(task, x, y, parts, make_strategy(StrategySpec()), **common)
    masked = simulate(task, x, y, parts, make_strategy(StrategySpec()), secure=secure, **common)
    dp = mechanism.Settings.from_spec(
        DifferentialPrivacy(epsilon=50, noise_multiplier=1.0, noise="distributed"), 12, 12
    )
    private = simulate(
        task, x, y, parts, make_strategy(StrategySpec()), secure=secure, privacy=dp, **common
    )
    # Assert: within the quantisation bound of the plain weighted mean; DP accounted
    bound = 1 / secagg.scale_for(4.0, len(y))
    for name, value in plain.parameters.items():
        gap = np.max(np.abs(masked.parameters[name].astype(np.float64) - value))
        assert 0 < gap <= bound + 1e-6
    assert private.privacy and private.privacy[0].extra == {"secure_aggregation": True}
    assert 0 < private.privacy[0].epsilon < 50
    with pytest.raises(SecureAggregationNeedsMean):
        simulate(
            task, x, y, parts, make_strategy(StrategySpec(name="median")), secure=secure, **common
        )
