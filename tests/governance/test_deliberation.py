"""Deliberation rights: delegates always, observers only in a public consultation; votes only on
the proposal's own statements; the map cache follows the votes; participation figures."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from tests.governance.conftest import resolution

from concord.governance import stats
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
