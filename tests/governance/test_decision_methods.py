"""Decision methods in the flow: signed method ballots through the API, the decision's
arithmetic, and the recount from the log that recomputes it with the same pure function."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from concord.governance import ballots
from concord.ledger.tables import LogEntry
from concord.members import keys

CANDIDATES = ["amina", "bao", "carla", "dmitri"]


def method_resolution(client: TestClient, sponsor: Any, method: dict[str, Any]) -> str:
    made = client.post(
        "/api/proposals",
        headers=sponsor.headers,
        json={
            "kind": "resolution",
            "title": f"Decided by {method['name']}",
            "texts": {"en": "The assembly decides."},
            "method": method,
        },
    )
    assert made.status_code == 201, made.text
    ref = str(made.json()["reference"])
    assert made.json()["method"]["name"] == method["name"]
    for step in ("deliberation", "ballot"):
        opened = client.post(f"/api/proposals/{ref}/{step}", headers=sponsor.headers, json={})
        assert opened.status_code == 200, opened.text
    return ref


def method_ballot(actor: Any, ref: str, method: str, vote: Any, reason: str = "") -> Any:
    payload = ballots.make_payload(ref, actor.member.slug, method, reason, vote=vote)
    return {"payload": payload, "signature": keys.sign(actor.key, ballots.message(payload))}


def vote(client: TestClient, actor: Any, ref: str, method: str, how: Any, reason: str = "") -> Any:
    return client.post(
        f"/api/proposals/{ref}/ballots",
        headers=actor.headers,
        json={"ballots": [method_ballot(actor, ref, method, how, reason)]},
    )


def log_bodies(db: Session) -> list[dict[str, Any]]:
    return [json.loads(b) for b in db.scalars(select(LogEntry.body).order_by(LogEntry.index))]


# Each method: its spec, each member's vote, and what the decision must show.
CASES: dict[str, tuple[dict[str, Any], dict[str, Any], str, list[str]]] = {
    "consent": (
        {"name": "consent"},
        {s: "consent" for s in ("kenya", "brazil", "india", "france", "germany")}
        | {"india": "stand_aside"},
        "adopted",
        [],
    ),
    "irv": (
        {"name": "irv", "options": CANDIDATES},
        {
            "kenya": ["amina", "bao"],
            "brazil": ["bao", "amina"],
            "india": ["carla", "amina"],
            "france": ["amina"],
            "germany": ["dmitri", "bao"],
        },
        "adopted",
        ["amina"],
    ),
    "stv": (
        {"name": "stv", "options": CANDIDATES, "seats": 2},
        {
            "kenya": ["amina", "bao"],
            "brazil": ["amina", "carla"],
            "india": ["carla", "amina"],
            "france": ["carla", "bao"],
            "germany": ["amina", "carla"],
        },
        "adopted",
        ["amina", "carla"],
    ),
    "score": (
        {"name": "score", "options": ["compute", "data", "training"]},
        {
            "kenya": {"compute": 5, "data": 3, "training": 4},
            "brazil": {"compute": 4, "data": 2, "training": 5},
            "india": {"compute": 5, "data": 1},
            "france": {"compute": 2, "data": 5, "training": 3},
            "germany": {"compute": 3, "data": 4, "training": 2},
        },
        "adopted",
        ["compute", "data", "training"],
    ),
    "approval": (
        {"name": "approval", "options": ["compute", "data", "training"], "dots": 3},
        {
            "kenya": {"compute": 2, "data": 1},
            "brazil": {"training": 3},
            "india": {"compute": 3},
            "france": {"data": 2, "compute": 1},
            "germany": {"data": 1, "training": 1},
        },
        "adopted",
        ["compute", "data", "training"],
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_each_method_decides_and_recounts_from_the_log(
    name: str, client: TestClient, assembly: dict[str, Any], db: Session
) -> None:
    # Prepare
    spec, votes, outcome, ranked = CASES[name]
    kenya = assembly["kenya"]
    ref = method_resolution(client, kenya, spec)
    # Execute
    for slug, how in votes.items():
        cast = vote(client, assembly[slug], ref, name, how)
        assert cast.status_code == 201, cast.text
    decided = client.post(f"/api/proposals/{ref}/close", headers=kenya.headers)
    # Assert: the method's full arithmetic, the ranked options, the charter's blocs
    assert decided.status_code == 200, decided.text
    arithmetic = decided.json()["arithmetic"]
    assert decided.json()["outcome"] == outcome
    assert decided.json()["rule"] == f"method:{name}"
    assert arithmetic["result"]["method"] in (name, "dots")
    assert [r["option"] for r in arithmetic["ranked"]] == ranked
    assert arithmetic["method"]["condition"]["blocs"] == ["global-south", "global-north"]
    assert {b["member"]: b["vote"] for b in arithmetic["ballots"]} == votes
    assert [r["option"] for r in client.get(f"/api/proposals/{ref}/ranked").json()] == ranked
    assert client.get("/api/governance/recount").json() == [
        {
            "proposal": ref,
            "logged_outcome": outcome,
            "recounted_outcome": outcome,
            "counts": {},
            "matches": True,
        }
    ]


def test_stv_shows_its_stages_and_bloc_condition(
    client: TestClient, assembly: dict[str, Any]
) -> None:
    spec, votes, _, _ = CASES["stv"]
    ref = method_resolution(client, assembly["kenya"], spec)
    for slug, how in votes.items():
        assert vote(client, assembly[slug], ref, "stv", how).status_code == 201
    result = client.post(f"/api/proposals/{ref}/close", headers=assembly["kenya"].headers).json()
    stv = result["arithmetic"]["result"]
    assert stv["quota"] == 2  # ⌊5 ÷ 3⌋ + 1
    assert stv["stages"][0]["action"] == "first_preferences"
    assert {c["bloc"] for c in stv["bloc_checks"]} == {"global-south", "global-north"}
    assert all(c["met"] for c in stv["bloc_checks"])


def test_a_tampered_method_ballot_does_not_recount(
    client: TestClient, assembly: dict[str, Any], db: Session
) -> None:
    # Prepare: a score decision
    spec, votes, _, _ = CASES["score"]
    ref = method_resolution(client, assembly["kenya"], spec)
    for slug, how in votes.items():
        assert vote(client, assembly[slug], ref, "score", how).status_code == 201
    assert client.post(f"/api/proposals/{ref}/close", headers=assembly["kenya"].headers)
    bodies = log_bodies(db)
    assert ballots.recount(bodies)[0]["matches"]
    # Execute: India's scores changed in its logged ballot (its signature no longer holds)
    for body in bodies:
        payload = body["content"].get("payload", {})
        if body["kind"] == "governance.ballot" and payload.get("member") == "india":
            payload["vote"] = {"compute": 0, "data": 5, "training": 5}
    again = ballots.recount(bodies)[0]
    # Assert
    assert not again["matches"]
    assert again["differences"][0]["field"] == "ballot:india"
    assert "result" in {d["field"] for d in again["differences"]}


@pytest.mark.parametrize(
    ("method", "how", "reason", "code"),
    [
        ("irv", ["amina", "nobody"], "", "decision.ballot_invalid"),
        ("irv", {"amina": 1}, "", "decision.ballot_invalid"),
        ("irv", ["amina", "amina"], "", "decision.ballot_invalid"),
        ("yes", ["amina"], "", "ballot.malformed"),
        ("approval", ["amina", "amina"], "", "decision.ballot_invalid"),
    ],
)
def test_malformed_method_ballots_are_refused_at_the_edge(
    method: str, how: Any, reason: str, code: str, client: TestClient, assembly: dict[str, Any]
) -> None:
    name = "approval" if method == "approval" else "irv"
    ref = method_resolution(client, assembly["kenya"], {"name": name, "options": CANDIDATES})
    refused = vote(client, assembly["brazil"], ref, method, how, reason)
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == code


def test_a_block_needs_a_reason_and_stops_consent(
    client: TestClient, assembly: dict[str, Any]
) -> None:
    ref = method_resolution(client, assembly["kenya"], {"name": "consent"})
    silent = vote(client, assembly["france"], ref, "consent", "block")
    assert silent.json()["error"]["code"] == "decision.block_without_reason"
    assert (
        vote(client, assembly["france"], ref, "consent", "block", "Too vague.").status_code == 201
    )
    for slug in ("kenya", "brazil", "germany"):
        assert vote(client, assembly[slug], ref, "consent", "consent").status_code == 201
    decided = client.post(f"/api/proposals/{ref}/close", headers=assembly["kenya"].headers).json()
    assert decided["outcome"] == "rejected"
    assert decided["arithmetic"]["result"]["blocks"][0]["reason"] == "Too vague."
    assert client.get("/api/governance/recount").json()[0]["matches"]


@pytest.mark.parametrize(
    ("kind", "method"),
    [
        ("resolution", {"name": "borda", "options": ["a", "b"]}),
        ("resolution", {"name": "stv", "options": ["a", "b"], "seats": 2}),
        ("resolution", {"name": "irv", "options": ["a", "a"]}),
        ("resolution", {"name": "consent", "options": ["a", "b"]}),
        ("resolution", {"name": "irv", "options": ["a", "b"], "condition": {"blocs": "x"}}),
    ],
)
def test_bad_methods_are_refused(
    kind: str, method: dict[str, Any], client: TestClient, assembly: dict[str, Any]
) -> None:
    made = client.post(
        "/api/proposals",
        headers=assembly["kenya"].headers,
        json={"kind": kind, "title": "T", "texts": {"en": "T."}, "method": method},
    )
    assert made.status_code == 422
    assert made.json()["error"]["code"] == "proposal.method_invalid"


def test_score_ranking_reaches_capacity_as_an_event(
    client: TestClient, assembly: dict[str, Any], db: Session
) -> None:
    from concord.events import Event

    spec, votes, _, ranked = CASES["score"]
    ref = method_resolution(client, assembly["kenya"], spec)
    for slug, how in votes.items():
        assert vote(client, assembly[slug], ref, "score", how).status_code == 201
    client.post(f"/api/proposals/{ref}/close", headers=assembly["kenya"].headers)
    event = db.scalars(select(Event).where(Event.name == "governance.options_ranked")).one()
    assert [r["option"] for r in event.payload["ranked"]] == ranked


def test_the_result_page_shows_the_stages(client: TestClient, assembly: dict[str, Any]) -> None:
    spec, votes, _, _ = CASES["stv"]
    ref = method_resolution(client, assembly["kenya"], spec)
    for slug, how in votes.items():
        assert vote(client, assembly[slug], ref, "stv", how).status_code == 201
    client.post(f"/api/proposals/{ref}/close", headers=assembly["kenya"].headers)
    page = client.get(f"/proposals/{ref}/result", headers={"Accept-Language": "fr"})
    assert page.status_code == 200
    assert "Vote unique transférable" in page.text
    assert "premières préférences" in page.text  # the first stage, translated
    assert "amina" in page.text and "carla" in page.text


def test_a_method_ballot_prepared_on_the_page_and_signed_outside(
    client: TestClient, assembly: dict[str, Any], db: Session
) -> None:
    import base64
    import html
    import re

    from tests.governance.test_pages import sign_in

    from concord.governance.tables import Ballot

    # Prepare
    kenya = assembly["kenya"]
    ref = method_resolution(client, kenya, {"name": "irv", "options": CANDIDATES})
    csrf = sign_in(client, kenya)
    # Execute: the page prepares the payload with the vote; it is signed off the page
    wrong = client.get(f"/proposals/{ref}", params={"choice": "irv", "vote": '["nobody"]'})
    prepared = client.get(f"/proposals/{ref}", params={"choice": "irv", "vote": '["bao", "amina"]'})
    text = html.unescape(re.search(r'<pre id="payload">(.*?)</pre>', prepared.text, re.S).group(1))  # type: ignore[union-attr]
    payload = html.unescape(re.search(r'name="payload" value="([^"]+)"', prepared.text).group(1))  # type: ignore[union-attr]
    signature = base64.b64encode(kenya.key.sign(text.encode())).decode()
    cast = client.post(
        f"/proposals/{ref}/ballot",
        data={"csrf": csrf, "payload": payload, "signature": signature},
        follow_redirects=False,
    )
    # Assert
    assert wrong.status_code == 422
    assert "--vote" in prepared.text
    assert cast.status_code == 303
    assert db.scalars(select(Ballot.payload)).one()["vote"] == ["bao", "amina"]


@pytest.mark.parametrize(("name", "heading"), [("irv", "Rounds"), ("score", "Ranking")])
def test_the_result_page_shows_rounds_and_rankings(
    name: str, heading: str, client: TestClient, assembly: dict[str, Any]
) -> None:
    spec, votes, _, ranked = CASES[name]
    ref = method_resolution(client, assembly["kenya"], spec)
    for slug, how in votes.items():
        assert vote(client, assembly[slug], ref, name, how).status_code == 201
    client.post(f"/api/proposals/{ref}/close", headers=assembly["kenya"].headers)
    page = client.get(f"/proposals/{ref}/result")
    assert f"<h2>{heading}</h2>" in page.text
    assert f"<li>{ranked[0]}" in page.text  # the result in order
    assert "global-north" in page.text  # the bloc checks
