"""The robust rules and the attacks, by hand on tiny vectors whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from concord.federation.attacks import (
    Attack,
    UnknownAttack,
    alie_z,
    choose_malicious,
    min_max_or_sum,
)
from concord.federation.parameters import Parameters
from concord.federation.simulation import crafted
from concord.federation.strategies import make_strategy
from concord.federation.strategies.base import ClientUpdate
from concord.federation.strategies.bucketing import Bucketing, buckets
from concord.federation.strategies.centred_clipping import CentredClipping, centred_clip
from concord.federation.strategies.fedavg import FedAvg
from concord.federation.strategies.geomedian import GeometricMedian, weiszfeld
from concord.federation.strategies.norm_bound import NormBound
from concord.federation.strategies.robust import MultiKrum
from concord.federation.strategies.whole import CLIPPED, DOWN_WEIGHTED, EXCLUDED, KEPT, Deltas
from concord.governance.jobspec import JobSpec, StrategySpec
from concord.governance.standards import run_rule

ZERO: Parameters = {"w": np.zeros(2, dtype=np.float32)}


def updates(*points: tuple[float, float]) -> list[ClientUpdate]:
    return [
        ClientUpdate({"w": np.array(p, dtype=np.float32)}, 10, f"m{i}")
        for i, p in enumerate(points)
    ]


def test_geometric_median_of_collinear_points_is_the_middle_one() -> None:
    # Prepare: five points on a line; the geometric median of collinear points is their median.
    points = [np.array([x, 2 * x]) for x in (0.0, 1.0, 2.0, 3.0, 100.0)]

    # Execute
    v, share = weiszfeld(Deltas.of(points), smoothing=1e-9, iterations=500)

    # Assert: at (2, 4), not dragged towards the far point as the mean (21.2, 42.4) is.
    assert np.allclose(v, [2.0, 4.0], atol=1e-3)
    assert share[4] < 0.05


def test_geometric_median_down_weights_the_outlier_and_records_why() -> None:
    rule = GeometricMedian(iterations=100)

    out = rule.aggregate(1, ZERO, updates((1, 0), (0, 1), (1, 1), (0, 0), (50, 50)))

    # Within the honest square (the mean would be (10.4, 10.4)).
    assert np.all(out["w"] < 1.0) and np.all(out["w"] > 0.0)
    actions = {v.client: v.action for v in rule.verdicts}
    assert actions["m4"] == DOWN_WEIGHTED
    assert actions["m0"] == KEPT
    far = next(v for v in rule.verdicts if v.client == "m4")
    assert far.norm == pytest.approx(np.hypot(50, 50), rel=1e-5)
    assert far.reason == "far-from-median"


def test_centred_clipping_bounds_one_updates_influence() -> None:
    # Prepare: four honest updates near (1, 0), one huge; τ = 1 around the centre 0.
    honest = [np.array([1.0, 0.0])] * 4
    for size in (10.0, 1e6):
        deltas = Deltas.of([*honest, np.array([0.0, size])])

        # Execute
        v, clipped, tau = centred_clip(deltas, np.zeros(2), tau=1.0, iterations=1)

        # Assert: whatever its size, the attacker moves the result by at most τ / n.
        assert np.allclose(v, [0.8, 0.2])
        assert clipped == [False, False, False, False, True]
        assert tau == 1.0


def test_centred_clipping_starts_from_the_last_aggregate() -> None:
    rule = CentredClipping(tau=0.5, momentum=1.0)
    rule.aggregate(1, ZERO, updates((1, 0), (1, 0), (1, 0)))
    centre = rule.state()["centre"]

    # A restarted hub takes the centre back and clips around it, not around zero.
    again = CentredClipping(tau=0.5, momentum=1.0)
    again.load_state(rule.state())
    out = again.aggregate(2, ZERO, updates((1, 0), (1, 0), (1, 0)))

    assert np.allclose(centre, [0.5, 0.0])
    assert np.allclose(out["w"], [1.0, 0.0])


def test_multi_krum_picks_the_m_closest_and_names_the_excluded() -> None:
    rule = MultiKrum(byzantine=1, keep=3)
    results = updates((0, 0), (0.1, 0), (0, 0.1), (5, 5), (-6, 4))

    out = rule.combine(results)

    assert np.allclose(out["w"], [0.1 / 3, 0.1 / 3], atol=1e-6)
    excluded = [
        r.client for r, o in zip(results, rule.outcomes, strict=True) if o.action == EXCLUDED
    ]
    assert excluded == ["m3", "m4"]


def test_bucketing_preserves_the_mean_when_all_are_honest() -> None:
    rng = np.random.default_rng(1)
    points = [tuple(rng.normal(size=2)) for _ in range(8)]
    rule = Bucketing(FedAvg(), size=2)

    out = rule.aggregate(3, ZERO, updates(*points))

    assert np.allclose(out["w"], np.mean(points, axis=0), atol=1e-6)
    assert sorted(buckets(8, 2, 0, 3)) == [0, 0, 1, 1, 2, 2, 3, 3]


def test_bucketing_with_centred_clipping_records_each_members_bucket() -> None:
    rule = make_strategy(StrategySpec(name="centred-clipping", params={"tau": 0.1}, bucketing=2))
    assert isinstance(rule, Bucketing)

    rule.aggregate(1, ZERO, updates((0, 0), (0, 0), (0, 0), (9, 9)))

    bad = next(v for v in rule.verdicts if v.client == "m3")
    assert bad.action == CLIPPED
    assert bad.reason == "bucket-clipped-to-centre"
    assert bad.detail["buckets"] == 2.0


def test_norm_bound_clips_to_the_median_norm() -> None:
    rule = NormBound()

    out = rule.aggregate(1, ZERO, updates((1, 0), (0, 1), (0, -1), (100, 0)))

    # Norms 1, 1, 1, 100; bound = median = 1; the boosted one counts as (1, 0).
    assert np.allclose(out["w"], [0.5, 0.0])
    assert [v.action for v in rule.verdicts] == [KEPT, KEPT, KEPT, CLIPPED]
    assert rule.verdicts[3].detail == {"bound": 1.0}


def test_the_rules_read_stored_updates_as_they_read_updates_in_memory(tmp_path) -> None:
    from concord.federation.parameters import TensorFile, write_safetensors
    from concord.federation.strategies.base import StoredUpdate

    results = updates((1, 0), (0, 1), (3, 3), (0.5, 0.5))
    paths = []
    for r in results:
        paths.append(tmp_path / f"{r.client}.safetensors")
        write_safetensors(paths[-1], r.parameters)
    for make in (GeometricMedian, NormBound, CentredClipping):
        in_memory = make().aggregate(1, ZERO, results)
        files = [TensorFile(p) for p in paths]
        stored = [StoredUpdate(f, 10, r.client) for f, r in zip(files, results, strict=True)]
        from_disk = make().aggregate_stored(1, ZERO, stored)
        for f in files:
            f.close()
        assert np.allclose(in_memory["w"], from_disk["w"])


def test_alie_z_follows_the_papers_formula() -> None:
    # n = 50, m = 12: s = 26 − 12 = 14, z = Φ⁻¹(36 / 50) ≈ 0.583.
    assert alie_z(50, 12) == pytest.approx(0.5828, abs=1e-3)
    assert alie_z(10, 2) == pytest.approx(0.2533, abs=1e-3)


def test_min_max_stays_within_the_honest_spread() -> None:
    honest = np.random.default_rng(0).normal(size=(6, 20))
    d2 = ((honest[:, None] - honest[None]) ** 2).sum(-1)

    made = min_max_or_sum(honest, "min-max")

    assert ((honest - made) ** 2).sum(1).max() <= d2.max() + 1e-9
    # …and uses the room: a γ twice as large would break the bound.
    mu, p = honest.mean(0), -honest.std(0)
    gamma = float(np.linalg.norm(made - mu) / np.linalg.norm(p))
    assert ((honest - (mu + 2 * gamma * p)) ** 2).sum(1).max() > d2.max()


def test_attacks_replace_only_the_malicious_updates() -> None:
    results = updates((1, 0), (1, 0.2), (0.8, 0), (1, 1))
    attack = Attack("ipm", frozenset({"m3"}), {"epsilon": 1.0})

    out = crafted(attack, ZERO, results, 1)

    assert np.allclose(out[3].parameters["w"], [-0.9333333, -0.0666667])
    assert out[0] is results[0]
    with pytest.raises(UnknownAttack):
        Attack("nonsense", frozenset())
    assert len(choose_malicious(100, 0.2)) == 20


def test_the_spec_validates_robust_strategies_and_standards_see_them() -> None:
    with pytest.raises(ValidationError, match="has no parameter 'tauu'"):
        StrategySpec(name="centred-clipping", params={"tauu": 1})
    with pytest.raises(ValidationError, match="must lie in"):
        StrategySpec(name="trimmed-mean", params={"beta": 0.7})
    with pytest.raises(ValidationError, match="bucketing needs a robust rule"):
        StrategySpec(name="fedavg", bucketing=2)
    spec = JobSpec.model_validate(
        {
            "task": "logreg-digits",
            "participants": {"members": ["a"]},
            "rounds": 1,
            "strategy": {"name": "geometric-median", "params": {"iterations": 20}},
        }
    )
    assert spec.context()["job"]["strategy"]["robust"] is True
    rule = 'job.strategy.robust && job.strategy.name != "krum"'
    assert run_rule(rule, spec.context()) == ("pass", "")
    assert (
        JobSpec.model_validate({**spec.model_dump(), "strategy": {}}).context()["job"]["strategy"][
            "robust"
        ]
        is False
    )


def test_simulated_noise_breaks_fedavg_but_not_the_robust_rules() -> None:
    from concord.federation import data
    from concord.federation.simulation import simulate
    from concord.federation.tasks.logreg import DigitsLogReg

    # Prepare: 20 clients, 30 % of them send Gaussian noise of σ = 5 instead of updates.
    task = DigitsLogReg()
    x, y, xt, yt = task.split()
    parts = data.iid(len(y), 20, seed=0)
    attack = Attack("noise", choose_malicious(20, 0.3), {"sigma": 5.0})
    local = {"epochs": 1, "batch_size": 10, "learning_rate": 0.3}

    # Execute
    accuracy = {}
    for spec in (
        StrategySpec(name="fedavg"),
        StrategySpec(name="centred-clipping"),
        StrategySpec(name="geometric-median"),
    ):
        result = simulate(
            task,
            x,
            y,
            parts,
            make_strategy(spec),
            rounds=3,
            local=local,
            clients_per_round=10,
            test=(xt, yt),
            attack=attack,
        )
        accuracy[spec.name] = result.history[-1]["accuracy"]

    # Assert
    assert accuracy["fedavg"] < 0.5
    assert accuracy["centred-clipping"] > 0.8
    assert accuracy["geometric-median"] > 0.8


def test_bucketing_takes_tau_from_the_updates_so_tainted_buckets_stay_bounded() -> None:
    # Prepare: 8 updates in buckets of 2; attackers (norm 1000) in 3 of the 4 buckets, so a
    # median over the bucket means would be an attacker's distance.
    bucket = buckets(8, 2, 0, 1)
    tainted = [next(i for i, b in enumerate(bucket) if b == k) for k in range(3)]
    points = [(1000.0, 1000.0) if i in tainted else (1.0, 0.0) for i in range(8)]
    rule = Bucketing(CentredClipping(), size=2)

    # Execute
    out = rule.aggregate(1, ZERO, updates(*points))

    # Assert: τ is the updates' median norm (1), so the result moves at most about τ.
    assert np.linalg.norm(out["w"]) < 1.5
