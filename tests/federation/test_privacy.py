"""Differential privacy: clipping, noise, ε from dp-accounting, the budget, adaptive clipping,
and that every privacy statement (card, provenance, standards) comes from what the run applied."""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import dp_accounting
import numpy as np
import pytest
import yaml
from dp_accounting import rdp
from sqlalchemy import select

from concord.commons import repositories
from concord.db import utcnow
from concord.federation import jobs
from concord.federation.parameters import to_safetensors
from concord.federation.privacy import accountant, mechanism, noise
from concord.federation.privacy.clipping import AdaptiveClip, clip, l2_norm
from concord.federation.tables import Job, Round
from concord.federation.tasks.logreg import DigitsLogReg
from concord.governance.jobspec import DifferentialPrivacy, JobSpec
from concord.governance.seed import STANDARD_RULES
from concord.governance.tables import Proposal
from concord.ledger.tables import LogEntry
from concord.members import keys

from .test_deployment import register

# --- the parts -------------------------------------------------------------------------------


def test_clipping_bounds_the_norm_over_all_tensors() -> None:
    rng = np.random.default_rng(0)
    delta = {"a": rng.normal(size=(30, 4)), "b": rng.normal(size=7)}
    clipped, before = clip(delta, 1.5)
    assert before == pytest.approx(math.sqrt(sum((v**2).sum() for v in delta.values())))
    assert before > 1.5 and l2_norm(clipped) == pytest.approx(1.5)
    # Direction kept; a short update is left as it is.
    assert np.allclose(clipped["a"] / delta["a"], 1.5 / before)
    short = {"a": np.full(3, 0.1)}
    assert np.array_equal(clip(short, 1.0)[0]["a"], short["a"])


def test_noise_has_the_standard_deviation_it_claims() -> None:
    zeros = {"w": np.zeros((400, 500))}
    noised = noise.add_gaussian(zeros, 2.5, np.random.default_rng(7))["w"]
    # 200 000 draws: the sample std is within 0.5 % of σ with overwhelming probability.
    assert noised.std() == pytest.approx(2.5, rel=0.005)
    assert abs(noised.mean()) < 0.02
    assert noise.share_std(1.2, 0.5, 9) == pytest.approx(1.2 * 0.5 / 3)


def test_two_fresh_generators_differ() -> None:
    a, b = noise.fresh_generator(), noise.fresh_generator()
    assert a.normal() != b.normal()


def test_accountant_matches_dp_accounting_and_moves_the_right_way() -> None:
    q, z, rounds, delta = 0.1, 1.1, 50, 1e-5
    direct = rdp.RdpAccountant(accountant.RDP_ORDERS)
    direct.compose(
        dp_accounting.SelfComposedDpEvent(
            dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(z)), rounds
        )
    )
    ours = accountant.epsilon([(q, z)] * rounds, delta)
    assert ours == pytest.approx(direct.get_epsilon(delta), rel=1e-9)
    assert accountant.epsilon([(q, 2 * z)] * rounds, delta) < ours  # more noise, less ε
    assert accountant.epsilon([(q, z)] * (2 * rounds), delta) > ours  # more rounds, more ε
    pld = accountant.epsilon([(q, z)] * rounds, delta, "pld")
    assert 0 < pld <= ours * 1.05  # PLD is tighter than RDP (up to discretisation)
    assert accountant.epsilon([(q, 0.0)], delta) == math.inf
    assert accountant.default_delta(100) == pytest.approx(100**-1.1)


def test_adaptive_clip_converges_to_the_target_quantile() -> None:
    rng = np.random.default_rng(3)
    rule = AdaptiveClip(bound=0.1, target_quantile=0.5, learning_rate=0.2, count_stddev=100 / 20)
    for _ in range(400):
        norms = rng.lognormal(mean=0.0, sigma=0.5, size=100).tolist()
        rule.update(norms, rng)
    # The median of lognormal(0, 0.5) is 1; the noised rule hovers around it.
    assert rule.bound == pytest.approx(1.0, rel=0.15)
    high = AdaptiveClip(bound=0.1, target_quantile=0.9, learning_rate=0.2)
    for _ in range(400):
        high.update(rng.lognormal(0.0, 0.5, size=100).tolist(), rng)
    assert high.bound == pytest.approx(math.exp(0.5 * 1.2816), rel=0.15)


def test_the_private_mean_carries_the_noise_it_accounts() -> None:
    """Measured: the DP mean minus the plain mean of the clipped deltas has std z·C/m."""
    rng = np.random.default_rng(11)
    start = {"w": np.zeros(50_000, dtype=np.float32)}
    updates = [{"w": rng.normal(0, 0.01, size=50_000).astype(np.float32)} for _ in range(8)]
    settings = mechanism.Settings(budget=10, delta=1e-5, clip_norm=0.5, noise_multiplier=2.0)
    mean, record = mechanism.private_mean(
        start, iter(updates), settings, clip_norm=0.5, chosen=8, sampling_rate=0.5, rng=rng
    )
    plain = sum(clip({"w": u["w"].astype(np.float64)}, 0.5)[0]["w"] for u in updates) / 8
    assert (mean["w"] - plain).std() == pytest.approx(2.0 * 0.5 / 8, rel=0.02)
    assert record.clipped == 8 and record.noise_std == pytest.approx(1.0)


# --- at the hub ------------------------------------------------------------------------------


def _spec(members: list[str], dp: dict[str, Any] | None, **extra: Any) -> JobSpec:
    body: dict[str, Any] = {
        "task": "logreg-digits",
        "participants": {"members": members},
        "rounds": 3,
        "min_participants": len(members),
        "round_deadline_s": 600,
        "licence": "MIT",
        "privacy": {"personal_data": True, "differential_privacy": dp},
        **extra,
    }
    return JobSpec.model_validate(body)


def _deliver(client, settings, actor, job_id: int, number: int, rng) -> None:
    """One node's update, trained as a node would have (here: the global model moved)."""
    start = jobs.read_parameters(settings, _open(client, actor, job_id, number))
    params = {k: v + rng.normal(0, 0.05, size=v.shape).astype(v.dtype) for k, v in start.items()}
    body = to_safetensors(params)
    sha = hashlib.sha256(body).hexdigest()
    message = jobs.update_message(job_id, number, actor.member.slug, sha, 40)
    response = client.post(
        f"/api/federation/jobs/{job_id}/rounds/{number}/updates",
        content=body,
        headers={
            **actor.headers,
            "X-Concord-Examples": "40",
            "X-Concord-Signature": keys.sign(actor.key, message),
            "X-Concord-Metrics": json.dumps(_METRICS),
        },
    )
    assert response.status_code == 201, response.text


_METRICS: dict[str, float] = {"accuracy": 0.5}  # what the simulated nodes report


def _open(client, actor, job_id: int, number: int) -> str:
    work = client.get("/api/federation/work", headers=actor.headers).json()
    assert work["job"] == job_id and work["round"] == number, work

    return f"job-{job_id}/round-{number - 1}.safetensors"


def _run(client, sessions, settings, actors, spec: JobSpec, title: str = "Digits") -> int:
    with sessions() as s:
        job_id = jobs.create_job(s, settings, spec, title=title).id
        s.commit()
    for actor in actors:
        assert register(client, actor).status_code == 200
    rng = np.random.default_rng(5)
    for number in range(1, spec.rounds + 1):
        with sessions() as s:
            if s.get(Job, job_id).status != "running":  # type: ignore[union-attr]
                break
        for actor in actors:
            _deliver(client, settings, actor, job_id, number, rng)
    return job_id


def _adopt_privacy_standard(sessions, actor) -> None:
    with sessions() as s:
        s.add(
            Proposal(
                reference="P-2026-900",
                kind="standard",
                title="Open and private",
                texts={"en": "Rules."},
                sponsor_id=actor.member.id,
                author_person_id=actor.person.id,
                status="adopted",
                body=STANDARD_RULES,
                created_at=utcnow(),
            )
        )
        s.commit()


def _members(make, n: int) -> list[Any]:
    codes = ["KE", "BR", "NO", "IN", "FR", "DE"]
    return [make.delegate(f"m{i}", codes[i]) for i in range(n)]


def test_the_budget_stops_the_job_before_a_round_would_exceed_it(
    client, make, sessions, settings, db
) -> None:
    actors = _members(make, 3)
    dp = {"epsilon": 3.5, "delta": 1e-5, "noise_multiplier": 2.0, "clip_norm": 0.5}
    spec = _spec([a.member.slug for a in actors], dp, rounds=5)
    job_id = _run(client, sessions, settings, actors, spec)
    job = db.get(Job, job_id)
    db.refresh(job)
    closed = db.scalars(
        select(Round).where(Round.job_id == job_id, Round.status == "closed").order_by(Round.number)
    ).all()
    # q = 1, z = 2, δ = 1e-5: ε = 2.17, 3.19 after two rounds; a third would reach 4.01 > 3.5.
    assert job.status == "completed" and job.rounds_done == 2 and len(closed) == 2
    assert "privacy budget" in job.finish_reason
    assert [r.privacy["epsilon"] for r in closed] == pytest.approx([2.168, 3.190], abs=1e-3)
    assert closed[-1].privacy["epsilon"] <= 3.5
    assert accountant.epsilon([(1.0, 2.0)] * 3, 1e-5) > 3.5
    stop = db.scalars(
        select(LogEntry).where(LogEntry.kind == "federation.privacy_budget_reached")
    ).one()
    assert json.loads(stop.body)["content"]["epsilon_next"] == pytest.approx(4.012, abs=1e-3)
    logged = db.scalars(select(LogEntry).where(LogEntry.kind == "federation.round")).all()
    assert [json.loads(e.body)["content"]["privacy"]["epsilon"] for e in logged] == pytest.approx(
        [2.168, 3.190], abs=1e-3
    )
    page = client.get(f"/jobs/{job_id}").text
    assert "privacy budget" in page and "3.19" in page


def test_the_card_states_dp_only_as_measured(client, make, sessions, settings, db) -> None:
    """The card claims client-level DP, and the aggregate really carries σ = z·C/m of noise:
    with a zeroed noise stage the measured spread collapses and this test fails."""
    actors = _members(make, 3)
    _adopt_privacy_standard(sessions, actors[0])
    dp = {"epsilon": 8, "delta": 1e-5, "noise_multiplier": 2.0, "clip_norm": 0.01}
    spec = _spec([a.member.slug for a in actors], dp, rounds=1, publish_as="m0/digits")
    job_id = _run(client, sessions, settings, actors, spec)
    job = db.get(Job, job_id)
    db.refresh(job)
    before = jobs.read_parameters(settings, f"job-{job_id}/round-0.safetensors")
    after = jobs.read_parameters(settings, job.parameters)
    moved = np.concatenate([(after[k] - before[k]).ravel() for k in before])
    # Clipped deltas add at most C/m = 0.0033 in norm; the noise adds z·C/m = 0.0067 per
    # coordinate (650 coordinates).
    assert moved.std() == pytest.approx(2.0 * 0.01 / 3, rel=0.1)
    assert job.publication.get("revision"), job.publication
    revision = repositories.head(db, repositories.require(db, "model", "m0", "digits"))
    assert revision is not None
    claimed = revision.card["privacy"]["client_level"]
    assert claimed["epsilon"] == pytest.approx(2.168, abs=1e-3) and claimed["rounds"] == 1
    assert revision.provenance["privacy_achieved"]["noise_multiplier"] == 2.0
    text = (jobs.folder(settings) / job.model_path / "README.md").read_text()
    assert "client-level differential privacy achieved, ε = 2.17" in text


def test_a_run_that_skipped_dp_claims_none_and_is_not_published(
    client, make, sessions, settings, db, monkeypatch
) -> None:
    actors = _members(make, 3)
    _adopt_privacy_standard(sessions, actors[0])
    monkeypatch.setattr(jobs, "_dp_settings", lambda session, spec: None)  # the stage skipped
    dp = {"epsilon": 8, "delta": 1e-5, "noise_multiplier": 2.0}
    spec = _spec([a.member.slug for a in actors], dp, rounds=1, publish_as="m0/digits")
    job_id = _run(client, sessions, settings, actors, spec)
    job = db.get(Job, job_id)
    db.refresh(job)
    text = (jobs.folder(settings) / job.model_path / "README.md").read_text()
    meta = yaml.safe_load(text.split("---\n")[1])
    assert "privacy" not in meta and "differential-privacy" not in meta["tags"]
    assert "achieved" not in text and "NOT applied" in text
    # Personal data without achieved DP breaks the standard at publication.
    assert job.publication["error"] == "federation.outcome_refused"
    assert job.model_repo == ""


def test_distributed_noise_missing_from_an_update_is_measured(
    client, make, sessions, settings, db
) -> None:
    """A node that sends its update without its noise share: the hub sees it, accounts the
    round without that share, and a run with no noise at all claims nothing."""
    actors = _members(make, 3)
    dp = {"epsilon": 50, "delta": 1e-5, "noise_multiplier": 2.0, "noise": "distributed"}
    spec = _spec([a.member.slug for a in actors], dp, rounds=1)
    job_id = _run(client, sessions, settings, actors, spec)  # plain updates: no noise share
    row = db.scalars(select(Round).where(Round.job_id == job_id, Round.status == "closed")).one()
    assert row.privacy["noised"] == 0 and row.privacy["epsilon"] is None
    job = db.get(Job, job_id)
    db.refresh(job)
    assert jobs.achieved_privacy(db, job) is None
    text = (jobs.folder(settings) / job.model_path / "README.md").read_text()
    assert "achieved" not in text


def test_a_title_with_colons_and_quotes_publishes_a_parseable_card(
    client, make, sessions, settings, db
) -> None:
    actors = _members(make, 1)
    title = 'Digits: "the first" — l\'essai #1: done'
    spec = _spec([actors[0].member.slug], None, rounds=1, publish_as="m0/digits")
    spec.privacy.personal_data = False
    job_id = _run(client, sessions, settings, actors, spec, title=title)
    job = db.get(Job, job_id)
    db.refresh(job)
    assert job.publication.get("revision"), job.publication
    revision = repositories.head(db, repositories.require(db, "model", "m0", "digits"))
    assert revision is not None and revision.card["model-index"][0]["name"] == title


def test_spec_refuses_adaptive_clipping_with_distributed_noise() -> None:
    with pytest.raises(ValueError):
        DifferentialPrivacy(epsilon=3, adaptive=True, noise="distributed")


def test_the_simulator_applies_dp_accounts_it_and_keeps_the_budget() -> None:
    from concord.federation import data
    from concord.federation.simulation import simulate
    from concord.federation.strategies import make_strategy
    from concord.federation.tasks.logreg import DigitsLogReg
    from concord.governance.jobspec import StrategySpec

    task = DigitsLogReg()
    x, y, xt, yt = task.split()
    parts = data.iid(len(y), 20, seed=0)
    # Flower's default σ_b = m/20 = 0.5 needs z < 2σ_b = 1.
    dp = DifferentialPrivacy(epsilon=6.0, noise_multiplier=0.8, clip_norm=0.5, adaptive=True)
    settings = mechanism.Settings.from_spec(dp, 20, 10)
    result = simulate(
        task,
        x,
        y,
        parts,
        make_strategy(StrategySpec()),
        rounds=50,
        clients_per_round=10,
        local={"epochs": 1, "batch_size": 10, "learning_rate": 0.1},
        test=(xt, yt),
        privacy=settings,
    )
    done = len(result.privacy)
    assert 0 < done < 50 and "privacy budget" in result.stopped
    expected = accountant.epsilon([(0.5, 0.8)] * done, settings.delta)
    assert result.history[-1]["epsilon"] == pytest.approx(expected)
    assert accountant.epsilon([(0.5, 0.8)] * (done + 1), settings.delta) > 6.0
    assert settings.delta == pytest.approx(20**-1.1)
    # Adaptive clipping moved C from its start; releasing the count costs z_Δ > z on the sum.
    assert result.privacy[-1].next_clip_norm != 0.5
    assert settings.sum_noise_multiplier == pytest.approx((0.8**-2 - 1.0**-2) ** -0.5)
    with pytest.raises(mechanism.CountNoiseTooSmall):
        mechanism.Settings.from_spec(dp.model_copy(update={"noise_multiplier": 1.5}), 20, 10)


def test_real_nodes_add_distributed_noise_and_the_hub_measures_it(
    live_server, make, sessions, settings, db, tmp_path
) -> None:
    import os
    import subprocess
    import sys

    from concord.federation import data

    from .test_deployment import _site

    actors = _members(make, 3)
    x, _y, _xt, _yt = DigitsLogReg().split()
    parts = data.iid(len(x), len(actors), seed=1)
    dp = {"epsilon": 50, "delta": 1e-5, "noise_multiplier": 1.0, "noise": "distributed"}
    spec = _spec([a.member.slug for a in actors], dp, rounds=2, round_deadline_s=120)
    with sessions() as s:
        job_id = jobs.create_job(s, settings, spec, title="Digits: private").id
        s.commit()
    processes = []
    for actor, part in zip(actors, parts, strict=True):
        slug = actor.member.slug
        folder, key_file = _site(tmp_path, actor, slug, part)
        command = ["node", "--member", slug, "--data", str(folder), "--hub", live_server]
        command += ["--token", actor.token, "--key-file", str(key_file), "--idle-exit", "4"]
        processes.append(
            subprocess.Popen(
                [sys.executable, "-c", "from concord.cli import main; main()", *command],
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
    assert job.status == "completed" and job.rounds_done == 2
    closed = db.scalars(
        select(Round).where(Round.job_id == job_id, Round.status == "closed").order_by(Round.number)
    ).all()
    # Every node clipped its delta and added N(0, σ²/3): the hub measured all three shares.
    assert [r.privacy["noised"] for r in closed] == [3, 3]
    assert [r.privacy["noise_multiplier"] for r in closed] == [1.0, 1.0]
    expected = accountant.epsilon([(1.0, 1.0)] * 2, 1e-5)
    assert closed[-1].privacy["epsilon"] == pytest.approx(expected, abs=1e-5)
    text = (jobs.folder(settings) / job.model_path / "README.md").read_text()
    assert "client-level differential privacy achieved" in text and "distributed noise" in text


def test_dp_sgd_clips_each_example_and_adds_noise() -> None:
    import torch

    from concord.federation.privacy.dpsgd import noise_generator, private_gradient
    from concord.federation.tasks.base import TaskData
    from concord.federation.tasks.mnist import MnistLogReg

    task = MnistLogReg()
    rng = np.random.default_rng(0)
    x = rng.random((20, 784)).astype(np.float32) * 5
    y = rng.integers(0, 10, size=20)
    model = task.load(task.init_parameters(0))
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    # Without noise: the mean of per-example gradients each clipped to C, as a loop gives it.
    got = private_gradient(
        model, xt, yt, clip_norm=0.1, noise_multiplier=0.0, generator=noise_generator()
    )
    expected = {k: torch.zeros_like(v) for k, v in model.named_parameters()}
    for i in range(20):
        model.zero_grad()
        torch.nn.functional.cross_entropy(model(xt[i : i + 1]), yt[i : i + 1]).backward()
        grads = {k: v.grad.clone() for k, v in model.named_parameters()}
        norm = torch.sqrt(sum((g**2).sum() for g in grads.values()))
        for k, g in grads.items():
            expected[k] += g * min(1.0, 0.1 / float(norm)) / 20
    for k in expected:
        assert torch.allclose(got[k], expected[k], atol=1e-6)
    # With noise z: the spread around that mean is z·C/B per coordinate.
    noised = private_gradient(
        model, xt, yt, clip_norm=0.1, noise_multiplier=4.0, generator=noise_generator()
    )
    spread = torch.cat([(noised[k] - expected[k]).ravel() for k in expected])
    assert float(spread.std()) == pytest.approx(4.0 * 0.1 / 20, rel=0.05)
    # A node's training with dp_sgd says what it applied.
    config = {"epochs": 1, "batch_size": 10, "learning_rate": 0.1, "seed": 1}
    result = task.train(
        task.init_parameters(0),
        TaskData(x, y),
        {**config, "dp_sgd": {"clip_norm": 0.1, "noise_multiplier": 1.0, "delta": 1e-5}},
    )
    assert result.metrics["dp_sgd_noise"] == 1.0


def test_record_level_dp_is_stated_only_when_every_update_applied_it(
    client, make, sessions, settings, db
) -> None:
    actors = _members(make, 2)
    local = {"dp_sgd": {"clip_norm": 1.0, "noise_multiplier": 1.1, "delta": 1e-5}}
    spec = _spec([a.member.slug for a in actors], None, rounds=2, local=local)
    spec.privacy.personal_data = False
    global _METRICS
    _METRICS = {"accuracy": 0.5, "dp_sgd_noise": 1.1}
    try:
        applied = _run(client, sessions, settings, actors, spec)
        _METRICS = {"accuracy": 0.5}  # these nodes did not run DP-SGD
        skipped = _run(client, sessions, settings, actors, spec)
    finally:
        _METRICS = {"accuracy": 0.5}
    job = db.get(Job, applied)
    db.refresh(job)
    text = (jobs.folder(settings) / job.model_path / "README.md").read_text()
    # Each member: 40 examples, B = 10, E = 1 → 4 steps at q = 0.25 per round, 2 rounds.
    expected = accountant.epsilon([(0.25, 1.1)] * 8, 1e-5)
    meta = yaml.safe_load(text.split("---\n")[1])
    assert meta["privacy"]["record_level"]["epsilon"] == pytest.approx(expected, abs=1e-5)
    assert "record-level differential privacy" in text and "client_level" not in meta["privacy"]
    other = db.get(Job, skipped)
    db.refresh(other)
    assert (
        "record-level" not in (jobs.folder(settings) / other.model_path / "README.md").read_text()
    )


def test_concord_simulate_takes_dp_options_or_a_spec_and_prints_epsilon(cli_env, tmp_path) -> None:
    from typer.testing import CliRunner

    from concord.cli import app

    runner = CliRunner()
    common = ["simulate", "--clients", "20", "--per-round", "10", "--rounds", "3"]
    r = runner.invoke(app, [*common, "--dp-noise", "1.0", "--dp-clip", "0.5", "--dp-delta", "1e-5"])
    assert r.exit_code == 0, r.output
    expected = accountant.epsilon([(0.5, 1.0)] * 3, 1e-5)
    assert f"ε = {expected:.3g}" in r.output and "after 3 rounds" in r.output
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "privacy:\n  differential_privacy:\n    epsilon: 1.0\n    noise_multiplier: 1.0\n"
        "    delta: 1.0e-5\n"
    )
    r = runner.invoke(app, [*common, "--spec", str(spec)])
    assert r.exit_code == 0, r.output
    assert "stopped: privacy budget" in r.output
