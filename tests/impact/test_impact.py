"""The impact dashboard: equity measures, breakdowns, downloads and pages."""

from __future__ import annotations

import csv
import io

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from concord.impact import indicators
from concord.impact.equity import gini, gini_plain

# Indicator values are counts, kWh and kg: zero or at least a thousandth (subnormal floats
# would only test floating-point underflow).
VALUES = st.one_of(st.integers(0, 10**6), st.floats(min_value=1e-3, max_value=1e6))


@given(st.lists(VALUES, max_size=60))
def test_fast_gini_equals_the_definition(values: list[float]) -> None:
    assert gini(values) == pytest.approx(gini_plain(values), abs=1e-9)


def test_gini_extremes() -> None:
    assert gini([5, 5, 5, 5]) == 0
    assert gini([0, 0, 0, 12]) == pytest.approx(0.75)  # (n-1)/n when one holds everything


def _enrol_world(client, make) -> None:
    kenya = make.delegate("kenya", "KE")
    nepal = make.delegate("nepal", "NP")
    make.delegate("germany", "DE")
    from datetime import UTC, datetime, timedelta

    soon = (datetime.now(UTC) + timedelta(days=9)).strftime("%Y-%m-%dT09:00:00")
    pid = client.post(
        "/api/programmes",
        headers=kenya.headers,
        json={
            "host": "kenya",
            "title": "Data stewardship",
            "kind": "workshop",
            "area": "data-management",
            "languages": ["en"],
            "mode": "online",
            "seats": 10,
            "sessions": [{"starts": soon, "ends": soon.replace("09:", "12:"), "timezone": "UTC"}],
        },
    ).json()["id"]
    for name in ("A", "B", "C"):
        r = client.post(
            f"/api/programmes/{pid}/enrolments",
            headers=nepal.headers,
            json={"member": "nepal", "participant": name, "email": f"{name}@np.example"},
        )
        assert r.status_code == 201


def test_breakdowns_and_equity_follow_the_records(client: TestClient, make, db) -> None:
    _enrol_world(client, make)
    seats = indicators.compute(db, "seats")
    assert seats.available and seats.total == 3 and seats.participants == 1
    regions = {g.key: (g.members, g.value) for g in seats.by_region}
    assert regions == {"africa": (1, 0.0), "asia": (1, 3.0), "europe": (1, 0.0)}
    assert seats.south_share == 1.0 and seats.south_membership == pytest.approx(2 / 3)
    assert seats.poorer_share == 1.0  # Nepal is lower-middle income
    assert seats.gini == pytest.approx(2 / 3)
    assert sum(g.value for g in seats.by_income) == seats.total


def test_absent_domains_report_no_data(db) -> None:
    training = indicators.compute(db, "training")
    import importlib.util

    has_stats = (
        importlib.util.find_spec("concord.federation") is not None
        and importlib.util.find_spec("concord.federation.stats") is not None
    )
    assert training.available == has_stats


def test_downloads_and_pages(client: TestClient, make) -> None:
    _enrol_world(client, make)
    data = client.get("/api/impact/seats").json()
    assert data["total"] == 3 and data["gini"] == pytest.approx(0.6667, abs=1e-3)
    rows = list(csv.DictReader(io.StringIO(client.get("/api/impact/seats.csv").text)))
    assert {
        "indicator": "seats",
        "dimension": "bloc",
        "group": "global-south",
        "members": "2",
        "value": "3.0",
    } in rows
    assert client.get("/api/impact/nothing").json()["error"]["code"] == "impact.unknown_indicator"
    page = client.get("/impact")
    assert page.status_code == 200 and "<svg" in page.text
    assert client.get("/impact/report/2026").status_code == 200
    french = client.get("/impact", headers={"Accept-Language": "fr"})
    assert 'lang="fr"' in french.text
