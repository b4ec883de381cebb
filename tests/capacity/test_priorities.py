"""The priorities the assembly ranks order the programme list: governance announces the ranked
options, capacity keeps the ranking once, logs it, and the API, the page and the CLI follow it."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from tests.capacity.test_programmes import _programme_body
from tests.governance.test_decision_methods import method_resolution, vote
from typer.testing import CliRunner

from concord.capacity import handlers, priorities
from concord.capacity import seed as capacity_seed
from concord.capacity.programmes import AREAS
from concord.capacity.tables import PriorityRanking
from concord.cli import app
from concord.config import Settings
from concord.domains import domain_modules
from concord.events import Event, deliver_pending, wait_for_deliveries
from concord.hubkey import load_or_create
from concord.ledger.tables import LogEntry
from concord.seeding import World

MEMBERS = [("kenya", "KE"), ("brazil", "BR"), ("india", "IN"), ("france", "FR"), ("germany", "DE")]
# Options name areas by English name and by key, in any case; scores make the order
# Infrastructure (23) > data-management (17) > Talent training (11).
OPTIONS = ["Talent training", "infrastructure", "Data Management"]
SCORES = {
    "kenya": {"Talent training": 2, "infrastructure": 5, "Data Management": 4},
    "brazil": {"Talent training": 3, "infrastructure": 5, "Data Management": 3},
    "india": {"Talent training": 2, "infrastructure": 4, "Data Management": 3},
    "france": {"Talent training": 2, "infrastructure": 4, "Data Management": 4},
    "germany": {"Talent training": 2, "infrastructure": 5, "Data Management": 3},
}
PROGRAMMES = [  # announced in this order, so the list shows them newest first before a ranking
    ("Open-source MLOps", "talent-training"),
    ("Energy-efficient data centres", "infrastructure"),
    ("Swahili speech datasets", "data-management"),
    ("Robotics for agriculture", "industrial-empowerment"),  # an area the ranking leaves out
]


@pytest.fixture
def assembly(make: Any, client: TestClient) -> dict[str, Any]:
    actors = {slug: make.delegate(slug, code) for slug, code in MEMBERS}
    for title, area in PROGRAMMES:
        made = client.post(
            "/api/programmes",
            json=_programme_body("kenya", title=title, area=area),
            headers=actors["kenya"].headers,
        )
        assert made.status_code == 201, made.text
    return actors


def _decide(
    client: TestClient, assembly: dict[str, Any], method: dict[str, Any], votes: Any
) -> str:
    ref = method_resolution(client, assembly["kenya"], method)
    for slug, how in votes.items():
        assert vote(client, assembly[slug], ref, method["name"], how).status_code == 201
    closed = client.post(f"/api/proposals/{ref}/close", headers=assembly["kenya"].headers)
    assert closed.json()["outcome"] == "adopted", closed.text
    wait_for_deliveries()
    return ref


def _page_titles(client: TestClient, language: str = "en") -> list[str]:
    page = client.get("/programmes", headers={"Accept-Language": language})
    assert page.status_code == 200
    return re.findall(r'<a href="/programmes/\d+">([^<]+)</a>', page.text)


def test_an_adopted_score_ranking_orders_the_programme_list(
    client: TestClient, assembly: dict[str, Any], db: Session, cli_env: dict[str, str]
) -> None:
    # Prepare: before any ranking, the list is newest first and shows no priority
    before = client.get("/api/programmes").json()
    assert [p["title"] for p in before] == [t for t, _ in reversed(PROGRAMMES)]
    assert all(p["priority"] is None for p in before)
    assert client.get("/api/priorities").json() is None
    # Execute: the assembly ranks three areas by score
    ref = _decide(client, assembly, {"name": "score", "options": OPTIONS}, SCORES)
    # Assert: the API lists by the adopted rank; the unranked area comes last
    listed = client.get("/api/programmes").json()
    assert [(p["title"], p["priority"]) for p in listed] == [
        ("Energy-efficient data centres", {"rank": 1, "option": "infrastructure", "proposal": ref}),
        ("Swahili speech datasets", {"rank": 2, "option": "Data Management", "proposal": ref}),
        ("Open-source MLOps", {"rank": 3, "option": "Talent training", "proposal": ref}),
        ("Robotics for agriculture", None),
    ]
    one = client.get(f"/api/programmes/{listed[1]['id']}").json()
    assert one["priority"]["rank"] == 2
    current = client.get("/api/priorities").json()
    assert current["proposal"] == ref and current["method"] == "score"
    assert [(r["option"], r["area"]) for r in current["ranked"]] == [
        ("infrastructure", "infrastructure"),
        ("Data Management", "data-management"),
        ("Talent training", "talent-training"),
    ]
    # … and so does the page, with the ranking named and linked, in French too
    assert _page_titles(client) == [p["title"] for p in listed]
    page = html.unescape(client.get("/programmes", headers={"Accept-Language": "fr"}).text)
    assert f'href="/proposals/{ref}"' in page
    assert "Classés selon les priorités adoptées par l'assemblée" in page
    shown = client.get(f"/programmes/{listed[0]['id']}").text
    assert re.search(rf'<dt>Priority</dt><dd><a href="/proposals/{ref}">1</a></dd>', shown)
    # … and so does the command line, rank first
    printed = CliRunner().invoke(app, ["programme", "list"])
    assert printed.exit_code == 0, printed.output
    rows = re.findall(r"^│ (\d*)\s*│ (\d+)\s*│", printed.output, re.M)  # (priority, id)
    assert rows == [
        (str(p["priority"]["rank"]) if p["priority"] else "", str(p["id"])) for p in listed
    ]
    assert f"priorities adopted in {ref}" in printed.output
    # … and the ranking capacity kept is in the transparency log, once
    kept = db.scalars(select(LogEntry).where(LogEntry.kind == "capacity.priorities")).one()
    assert current["log_index"] == kept.index


def test_a_redelivered_event_changes_nothing(
    client: TestClient, assembly: dict[str, Any], db: Session, sessions: sessionmaker[Session]
) -> None:
    # Prepare
    _decide(client, assembly, {"name": "score", "options": OPTIONS}, SCORES)
    event = db.scalars(select(Event).where(Event.name == "governance.options_ranked")).one()
    entries = db.scalar(select(func.count()).select_from(LogEntry))
    # Execute: the handler runs again with the same event, as after a crash before its commit
    with sessions() as session, session.begin():
        handlers.options_ranked(session, event.payload)
    # Assert
    assert db.scalar(select(func.count()).select_from(PriorityRanking)) == 1
    assert db.scalar(select(func.count()).select_from(LogEntry)) == entries


def test_an_election_does_not_reorder_the_list_and_a_later_ranking_does(
    client: TestClient, assembly: dict[str, Any], db: Session
) -> None:
    # Prepare: the score ranking orders the list
    first = _decide(client, assembly, {"name": "score", "options": OPTIONS}, SCORES)
    ordered = [p["title"] for p in client.get("/api/programmes").json()]
    # Execute: an election of people (no area, no programme among its options) is adopted
    people = ["amina", "bao", "carla"]
    _decide(
        client,
        assembly,
        {"name": "irv", "options": people},
        {slug: ["bao", "amina"] for slug in assembly},
    )
    # Assert: the list keeps its order and the ranking that made it
    assert [p["title"] for p in client.get("/api/programmes").json()] == ordered
    assert client.get("/api/priorities").json()["proposal"] == first
    # Execute: an approval vote that names a programme by its title and an area
    options = ["Robotics for agriculture", "Talent training"]
    second = _decide(
        client,
        assembly,
        {"name": "approval", "options": options},
        {slug: options if slug != "kenya" else ["Robotics for agriculture"] for slug in assembly},
    )
    # Assert: the latest ranking orders the list; a programme named by title takes its rank
    listed = client.get("/api/programmes").json()
    assert [(p["title"], (p["priority"] or {}).get("rank")) for p in listed] == [
        ("Robotics for agriculture", 1),
        ("Open-source MLOps", 2),
        ("Swahili speech datasets", None),
        ("Energy-efficient data centres", None),
    ]
    assert listed[0]["priority"]["proposal"] == second
    assert db.scalar(select(func.count()).select_from(PriorityRanking)) == 2


def test_options_link_to_areas_by_key_or_name() -> None:
    assert priorities.area_of("  security   GOVERNANCE ") == "security-governance"
    assert priorities.area_of("industrial-empowerment") == "industrial-empowerment"
    assert priorities.area_of("Compute for all") is None


def test_the_demo_lists_its_programmes_by_the_priorities_it_voted(
    settings: Settings, sessions: sessionmaker[Session], client: TestClient
) -> None:
    # Prepare
    load_or_create(settings)
    world = World(settings=settings, sessions=sessions)
    # Execute: the demo's steps up to capacity (the federated run aside), delivering events
    # after each as the demo does
    for module in domain_modules("seed"):
        if module.__name__ in ("concord.federation.seed", "concord.impact.seed"):
            continue
        module.seed(world)
        deliver_pending(sessions, settings)
    # Assert: the score vote on the priorities orders the twelve programmes by area
    ranking = client.get("/api/priorities").json()
    assert ranking["title"] == "Capacity-building priorities 2027"
    assert sorted(r["area"] for r in ranking["ranked"]) == sorted(AREAS)
    listed = client.get("/api/programmes").json()
    rank_of = {r["area"]: r["rank"] for r in ranking["ranked"]}
    assert [p["priority"]["rank"] for p in listed] == sorted(rank_of[p["area"]] for p in listed)
    assert len(listed) == len(capacity_seed.PROGRAMMES)
    assert f'href="/proposals/{ranking["proposal"]}"' in client.get("/programmes").text
