"""The exchange: posting, the maximum-benefit matching, answers, and commitments' progress."""

from __future__ import annotations

import itertools
from datetime import date

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from concord.capacity import matching
from concord.capacity.matching import Party
from concord.capacity.tables import ExchangeItem, Match
from concord.ledger.tables import LogEntry


def _party(i, member, kind="compute", q=100.0, langs=("en",), offset=0.0, priority=1.0):
    return Party(i, member, kind, q, frozenset(langs), offset, priority)


def test_vectorised_benefit_equals_the_plain_formula() -> None:
    rng = np.random.default_rng(3)
    needs = [
        _party(
            i,
            i,
            q=float(rng.integers(1, 100)),
            langs=rng.choice(
                ["en", "fr", "ar"], size=int(rng.integers(1, 3)), replace=False
            ).tolist(),
            offset=float(rng.integers(-10, 12)),
            priority=float(rng.uniform(1, 2.2)),
        )
        for i in range(7)
    ]
    offers = [
        _party(
            100 + j,
            50 + j % 3,
            q=float(rng.integers(1, 100)),
            langs=["fr"] if j % 2 else ["en"],
            offset=float(rng.integers(-10, 12)),
        )
        for j in range(5)
    ]
    b = matching.benefit_matrix(needs, offers)
    for i, j in itertools.product(range(7), range(5)):
        assert b[i, j] == pytest.approx(matching.benefit(needs[i], offers[j])[0])


def test_assignment_beats_greedy_and_matches_brute_force() -> None:
    # Greedy would give the big offer to the first need; the optimum splits differently.
    needs = [_party(0, 1, q=10, priority=1.0), _party(1, 2, q=100, priority=1.9)]
    offers = [_party(10, 3, q=100), _party(11, 4, q=10)]
    pairs = matching.solve(needs, offers)
    total = sum(b for _i, _j, b in pairs)
    best = max(
        sum(matching.benefit(needs[i], offers[j])[0] for i, j in enumerate(perm))
        for perm in itertools.permutations(range(2))
    )
    assert total == pytest.approx(best)
    assert {(i, j) for i, j, _b in pairs} == {(0, 1), (1, 0)}


def test_no_self_matches_and_kinds_stay_apart() -> None:
    needs = [_party(0, 1, kind="compute"), _party(1, 2, kind="expert")]
    offers = [_party(10, 1, kind="compute"), _party(11, 3, kind="funding")]
    assert matching.solve(needs, offers) == []


def _post(client, actor, member, side, kind, quantity, **extra):
    body = {
        "member": member,
        "side": side,
        "kind": kind,
        "title": f"{side} {kind}",
        "quantity": quantity,
        "languages": extra.pop("languages", ["en"]),
        "timezone": extra.pop("timezone", "UTC"),
        "details": extra.pop("details", {}),
    }
    return client.post("/api/exchange", json=body, headers=actor.headers)


def test_match_flow_through_the_api(client: TestClient, make, db) -> None:
    rwanda = make.delegate("rwanda", "RW")
    france = make.delegate("france", "FR")
    staff = make.secretariat()
    need = _post(client, rwanda, "rwanda", "need", "compute", 4000, timezone="Africa/Kigali")
    offer = _post(client, france, "france", "offer", "compute", 5000, timezone="Europe/Paris")
    assert need.status_code == offer.status_code == 201
    assert client.post("/api/matching/run", headers=rwanda.headers).status_code == 403
    proposed = client.post("/api/matching/run", headers=staff.headers).json()
    assert len(proposed) == 1
    m = proposed[0]
    assert m["reasons"]["coverage"] == 1.0 and m["reasons"]["priority"] > 1.5  # LDC, low income
    r = client.post(
        f"/api/matches/{m['id']}/answer",
        json={"member": "rwanda", "accept": True},
        headers=rwanda.headers,
    )
    assert r.json()["status"] == "proposed"
    stranger = make.delegate("peru", "PE")
    r = client.post(
        f"/api/matches/{m['id']}/answer",
        json={"member": "peru", "accept": True},
        headers=stranger.headers,
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "match.not_yours"
    r = client.post(
        f"/api/matches/{m['id']}/answer",
        json={"member": "france", "accept": True},
        headers=france.headers,
    )
    assert r.json()["status"] == "accepted"
    assert (
        db.scalar(
            select(func.count()).select_from(LogEntry).where(LogEntry.kind == "exchange.matched")
        )
        == 1
    )
    assert {i.status for i in db.scalars(select(ExchangeItem))} == {"matched"}
    again = client.post(
        f"/api/matches/{m['id']}/answer",
        json={"member": "france", "accept": False},
        headers=france.headers,
    )
    assert again.status_code == 409


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"quantity": -5}, "exchange.invalid"),
        ({"timezone": "Atlantis/Capital"}, "programme.unknown_timezone"),
        (
            {"kind": "dataset", "side": "offer", "details": {"dataset": "../etc/passwd"}},
            "exchange.unknown_dataset",
        ),
        ({"kind": "gold"}, "exchange.invalid"),
    ],
)
def test_bad_items_are_refused(client: TestClient, make, db, change, code) -> None:
    kenya = make.delegate("kenya", "KE")
    body = {
        "member": "kenya",
        "side": "need",
        "kind": "compute",
        "title": "t",
        "quantity": 5,
        "languages": ["en"],
        "timezone": "UTC",
        "details": {},
    }
    body.update(change)
    r = client.post("/api/exchange", json=body, headers=kenya.headers)
    assert r.status_code == 422 and r.json()["error"]["code"] == code
    assert db.scalar(select(func.count()).select_from(ExchangeItem)) == 0


def test_commitment_progress_is_computed_from_records(client: TestClient, make, db) -> None:
    rwanda = make.delegate("rwanda", "RW")
    china = make.delegate("china", "CN")
    staff = make.secretariat()
    year = date.today().year
    r = client.post(
        "/api/commitments",
        headers=staff.headers,
        json={
            "title": "GPU-hours to the Global South",
            "metric": "gpu-hours-to-global-south",
            "target": 10000,
            "start": f"{year}-01-01",
            "due": f"{year}-12-31",
        },
    )
    assert r.status_code == 201
    r = client.post(
        "/api/commitments",
        headers=rwanda.headers,
        json={
            "title": "x",
            "metric": "gpu-hours-to-global-south",
            "target": 1,
            "start": f"{year}-01-01",
            "due": f"{year}-12-31",
        },
    )
    assert r.status_code == 403  # the organisation's commitments are the secretariat's
    _post(client, rwanda, "rwanda", "need", "compute", 3000)
    _post(client, china, "china", "offer", "compute", 20000)
    [m] = client.post("/api/matching/run", headers=staff.headers).json()
    assert client.get("/api/commitments").json()[0]["value"] == 0  # proposed is not given
    for actor, member in ((rwanda, "rwanda"), (china, "china")):
        client.post(
            f"/api/matches/{m['id']}/answer",
            json={"member": member, "accept": True},
            headers=actor.headers,
        )
    [progress] = client.get("/api/commitments").json()
    assert progress["value"] == 3000 and progress["share"] == pytest.approx(0.3)
    assert db.scalar(select(func.count()).select_from(Match)) == 1
