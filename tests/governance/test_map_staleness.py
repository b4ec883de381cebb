"""The opinion map says how old it is: the API gives `computed_at` and the bound from the cached
map itself and an `Age` header; the proposal page prints when it was computed and how stale it
may be, in the reader's language. A replaceable clock passes the bound without sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.governance.conftest import resolution

from concord.governance import deliberation

COMPUTED = datetime(2026, 12, 2, 6, 41, 7, tzinfo=UTC)


class FakeClock:
    """The cache's two clocks, moved together by hand."""

    def __init__(self, start: datetime) -> None:
        self.now = start
        self.ticks = 1000.0

    def wall(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.ticks

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        self.ticks += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """A hub's real bound (5 s; the suite's default is exact maps) on a clock the test moves.
    `raising=False`: on a hub without the replaceable clock the test fails on what it asserts."""
    fake = FakeClock(COMPUTED)
    monkeypatch.setattr(deliberation, "MAP_MAX_AGE_S", 5.0)
    monkeypatch.setattr(deliberation, "CLOCK", fake, raising=False)
    return fake


def _deliberation(client: TestClient, sponsor: Any) -> tuple[str, int]:
    ref = resolution(client, sponsor)
    client.post(f"/api/proposals/{ref}/deliberation", headers=sponsor.headers)
    said = client.post(
        f"/api/proposals/{ref}/statements", headers=sponsor.headers, json={"text": "Open weights"}
    )
    return ref, int(said.json()["id"])


def _vote(client: TestClient, actor: Any, ref: str, statement: int, choice: str) -> None:
    voted = client.post(
        f"/api/proposals/{ref}/statements/{statement}/votes",
        headers=actor.headers,
        json={"vote": choice},
    )
    assert voted.status_code == 200, voted.text


def test_the_map_api_says_when_the_served_map_was_computed(
    client: TestClient, assembly: dict[str, Any], clock: FakeClock
) -> None:
    # Prepare: a statement with one vote
    kenya, france, brazil = assembly["kenya"], assembly["france"], assembly["brazil"]
    ref, statement = _deliberation(client, kenya)
    _vote(client, kenya, ref, statement, "agree")

    # Execute: a read; a vote and a read 3 s later (within the bound); a vote and a read 6 s
    # after the map was computed (past the bound)
    first = client.get(f"/api/proposals/{ref}/map")
    clock.advance(3)
    _vote(client, france, ref, statement, "disagree")
    second = client.get(f"/api/proposals/{ref}/map")
    clock.advance(3)
    _vote(client, brazil, ref, statement, "agree")
    third = client.get(f"/api/proposals/{ref}/map")

    # Assert: computed_at is the cached map's own moment, in ISO 8601 UTC, with the bound
    one, two, three = first.json(), second.json(), third.json()
    assert datetime.fromisoformat(one["computed_at"]) == COMPUTED
    assert datetime.fromisoformat(one["computed_at"]).utcoffset() == timedelta(0)
    assert one["max_age_s"] == 5.0 and first.headers["age"] == "0"
    # within the bound: the same map, France's vote not yet in it, and it says how old it is
    assert two["computed_at"] == one["computed_at"] and two["participants"] == 1
    assert second.headers["age"] == "3"
    # past the bound: a newer map with every vote
    assert datetime.fromisoformat(three["computed_at"]) == COMPUTED + timedelta(seconds=6)
    assert three["participants"] == 3 and third.headers["age"] == "0"
    assert "max-age" not in third.headers.get("cache-control", "")  # no cache downstream keeps it


@pytest.mark.parametrize(
    ("language", "moment", "bound"),
    [
        ("en", "Computed at Dec 2, 2026, 6:41:07\u202fAM UTC.", "at most once every 5 seconds"),
        ("fr", "Calculée le 2 déc. 2026, 06:41:07 UTC.", "intervalle de 5\u00a0secondes"),
        ("es", "Calculado el 2 dic 2026, 6:41:07 UTC.", "una vez cada 5 segundos"),
        ("ru", "Рассчитано 2 дек. 2026\u202fг., 06:41:07 UTC.", "интервал (5 секунд)"),
        ("zh", "计算于 2026年12月2日 06:41:07 UTC。", "最多每5秒钟重新计算一次"),
        ("ar", "حُسبت في 02\u200f/12\u200f/2026، 6:41:07 ص UTC.", "في كل فترة (5 ثوان)"),
    ],
)
def test_the_proposal_page_says_when_the_map_was_computed(
    client: TestClient,
    assembly: dict[str, Any],
    clock: FakeClock,
    language: str,
    moment: str,
    bound: str,
) -> None:
    # Prepare: a map computed at 06:41:07 UTC, and a vote 2 s later that it does not count yet
    kenya, france = assembly["kenya"], assembly["france"]
    ref, statement = _deliberation(client, kenya)
    _vote(client, kenya, ref, statement, "agree")
    client.get(f"/api/proposals/{ref}/map")
    clock.advance(2)
    _vote(client, france, ref, statement, "disagree")

    # Execute
    page = client.get(f"/proposals/{ref}", headers={"Accept-Language": language})

    # Assert: the cached map's moment and its bound, written as the reader's language writes them
    assert page.status_code == 200
    assert moment in page.text and bound in page.text
    assert 'aria-describedby="map-summary map-freshness"' in page.text


def test_an_exact_map_promises_no_bound(
    client: TestClient, assembly: dict[str, Any], clock: FakeClock, monkeypatch: Any
) -> None:
    # Prepare: a hub that recomputes on every change of votes
    monkeypatch.setattr(deliberation, "MAP_MAX_AGE_S", 0.0)
    kenya = assembly["kenya"]
    ref, statement = _deliberation(client, kenya)
    _vote(client, kenya, ref, statement, "agree")

    # Execute
    page = client.get(f"/proposals/{ref}", headers={"Accept-Language": "en"}).text

    # Assert: when it was computed, and no staleness to warn of
    assert "Computed at Dec 2, 2026, 6:41:07\u202fAM UTC." in page
    assert "may not be counted yet" not in page


def test_computed_at_is_when_the_votes_were_read_not_when_the_map_was_done(
    client: TestClient, assembly: dict[str, Any], clock: FakeClock, monkeypatch: Any
) -> None:
    # Prepare: a map whose computation takes 4 s (clustering under load)
    kenya = assembly["kenya"]
    ref, statement = _deliberation(client, kenya)
    _vote(client, kenya, ref, statement, "agree")
    real = deliberation.build_map

    def slow(*args: Any, **kwargs: Any) -> dict[str, Any]:
        result = real(*args, **kwargs)
        clock.advance(4)  # votes cast meanwhile are not in it
        return result

    monkeypatch.setattr(deliberation, "build_map", slow)

    # Execute
    served = client.get(f"/api/proposals/{ref}/map")

    # Assert: the map claims no later moment than the votes it counts, and is 4 s old
    assert datetime.fromisoformat(served.json()["computed_at"]) == COMPUTED
    assert served.headers["age"] == "4"
