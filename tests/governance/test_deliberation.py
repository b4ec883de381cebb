"""Deliberation rights: delegates always, observers only in a public consultation; votes only on
the proposal's own statements; the map cache follows the votes; participation figures."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.orm import Session
from tests.governance.conftest import resolution

from concord.governance import deliberation, opinion, stats
from concord.governance.tables import Proposal


def test_observers_need_a_public_consultation(
    client: TestClient, assembly: dict[str, Any], make: Any
) -> None:
    kenya, observer = assembly["kenya"], make.observer()
    ref = resolution(client, kenya)
    early = client.post(
        f"/api/proposals/{ref}/statements", headers=kenya.headers, json={"text": "x"}
    )
    assert early.json()["error"]["code"] == "deliberation.closed"
    client.post(f"/api/proposals/{ref}/deliberation", headers=kenya.headers)
    said = client.post(
        f"/api/proposals/{ref}/statements", headers=observer.headers, json={"text": "Hello"}
    )
    assert said.status_code == 403 and said.json()["error"]["code"] == "deliberation.members_only"
    assert (
        client.post(
            f"/api/proposals/{ref}/consultation",
            headers=assembly["france"].headers,
            json={"public": True},
        ).status_code
        == 403
    )
    client.post(f"/api/proposals/{ref}/consultation", headers=kenya.headers, json={"public": True})
    said = client.post(
        f"/api/proposals/{ref}/statements", headers=observer.headers, json={"text": "Hello"}
    )
    assert said.status_code == 201 and said.json()["member"] is None
    staff = make.secretariat()
    assert (
        client.post(
            f"/api/proposals/{ref}/statements", headers=staff.headers, json={"text": "x"}
        ).status_code
        == 403
    )


def test_votes_stay_on_their_proposal_and_refresh_the_map(
    client: TestClient, assembly: dict[str, Any], db: Session, make: Any
) -> None:
    kenya = assembly["kenya"]
    one, two = resolution(client, kenya, "One"), resolution(client, kenya, "Two")
    for ref in (one, two):
        client.post(f"/api/proposals/{ref}/deliberation", headers=kenya.headers)
    s1 = client.post(
        f"/api/proposals/{one}/statements", headers=kenya.headers, json={"text": "A"}
    ).json()["id"]
    wrong = client.post(
        f"/api/proposals/{two}/statements/{s1}/votes", headers=kenya.headers, json={"vote": "agree"}
    )
    assert wrong.status_code == 422 and wrong.json()["error"]["code"] == "statement.other_proposal"
    bad = client.post(
        f"/api/proposals/{one}/statements/{s1}/votes", headers=kenya.headers, json={"vote": "maybe"}
    )
    assert bad.status_code == 422
    before = client.get(f"/api/proposals/{one}/map").json()
    assert before["participants"] == 0
    client.post(
        f"/api/proposals/{one}/statements/{s1}/votes", headers=kenya.headers, json={"vote": "agree"}
    )
    client.post(
        f"/api/proposals/{one}/statements/{s1}/votes",
        headers=kenya.headers,
        json={"vote": "disagree"},
    )
    after = client.get(f"/api/proposals/{one}/map").json()
    assert after["participants"] == 1 and after["statements"][0]["disagree"] == 1
    proposal = db.query(Proposal).filter_by(reference=one).one()
    assert proposal.map_version == proposal.votes_version
    figures = stats.participation(db)
    assert figures[kenya.member.id] == {
        "statements": 1,
        "statement_votes": 1,
        "ballots": 0,
        "proposals": 2,
    }


def test_the_map_is_recomputed_at_most_once_per_max_age_while_votes_arrive(
    client: TestClient, assembly: dict[str, Any], monkeypatch: Any
) -> None:
    # Prepare: a deliberation with a statement, and a counter on the map's computation
    kenya, france = assembly["kenya"], assembly["france"]
    ref = resolution(client, kenya)
    client.post(f"/api/proposals/{ref}/deliberation", headers=kenya.headers)
    said = client.post(
        f"/api/proposals/{ref}/statements", headers=kenya.headers, json={"text": "A"}
    )
    statement = said.json()["id"]
    computed = []
    real = opinion.compute
    monkeypatch.setattr(opinion, "compute", lambda *a, **k: computed.append(1) or real(*a, **k))
    monkeypatch.setattr(deliberation, "MAP_MAX_AGE_S", 60.0, raising=False)
    # Execute: ten reads, each after a new or changed vote
    maps = []
    for i in range(10):
        who = kenya if i % 2 else france
        vote = ("agree", "disagree")[i % 3 == 0]
        client.post(
            f"/api/proposals/{ref}/statements/{statement}/votes",
            headers=who.headers,
            json={"vote": vote},
        )
        maps.append(client.get(f"/api/proposals/{ref}/map").json())
    # Assert: computed once, served with when it was computed and the staleness bound
    assert len(computed) == 1
    assert all(m["computed_at"] == maps[0]["computed_at"] for m in maps)
    assert maps[-1]["max_age_s"] == 60.0 and maps[-1]["participants"] == 1
    # a new statement refreshes it at once, whatever its age
    client.post(f"/api/proposals/{ref}/statements", headers=kenya.headers, json={"text": "B"})
    fresh = client.get(f"/api/proposals/{ref}/map").json()
    assert len(computed) == 2 and fresh["participants"] == 2
    assert [s["text"] for s in fresh["statements"]] == ["A", "B"]


def test_statements_are_listed_in_a_constant_number_of_queries(
    client: TestClient, app: Any, assembly: dict[str, Any]
) -> None:
    # Prepare: statements by several members, and a counter of the app's queries that read
    # members (the pool's own statements, e.g. SQLite pragmas on connect, are left out)
    kenya = assembly["kenya"]
    ref = resolution(client, kenya)
    client.post(f"/api/proposals/{ref}/deliberation", headers=kenya.headers)
    counts = []
    queries: list[str] = []

    def listen(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if "members" in statement:
            queries.append(statement)

    event.listen(app.state.engine, "before_cursor_execute", listen)
    try:
        for name in assembly:
            client.post(
                f"/api/proposals/{ref}/statements",
                headers=assembly[name].headers,
                json={"text": f"said by {name}"},
            )
            queries.clear()
            # Execute
            listed = client.get(f"/api/proposals/{ref}/statements")
            counts.append(len(queries))
    finally:
        event.remove(app.state.engine, "before_cursor_execute", listen)
    # Assert: every author's member is there, and the query count does not grow with them
    assert len(counts) >= 3
    assert [s["member"] for s in listed.json()] == [slug for slug in assembly]
    assert counts == [1] * len(counts), counts
