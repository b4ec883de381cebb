"""Proxies: signed by the delegating member, capped per holder, revocable until the close;
the delegating member's own ballot wins; counted in its own bloc; recounted from the log."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from tests.governance.conftest import cast, resolution, to_ballot
from tests.governance.test_decision_methods import method_resolution, vote

from concord.db import utcnow
from concord.governance import ballots, proxies
from concord.ledger.tables import LogEntry
from concord.members import keys


def signed_proxy(actor: Any, holder: str, proposal: str = "", **extra: Any) -> dict[str, Any]:
    payload = proxies.make_payload(actor.member.slug, holder, proposal)
    payload.update(extra)
    return {"payload": payload, "signature": keys.sign(actor.key, proxies.message(payload))}


def give(client: TestClient, actor: Any, holder: str, proposal: str = "", **extra: Any) -> Any:
    return client.post(
        "/api/proxies", headers=actor.headers, json=signed_proxy(actor, holder, proposal, **extra)
    )


def test_a_proxy_carries_the_vote_into_the_delegating_members_own_bloc(
    client: TestClient, assembly: dict[str, Any], db: Session
) -> None:
    # Prepare: Germany (north) gives its vote on the resolution to Kenya (south)
    kenya = assembly["kenya"]
    ref = resolution(client, kenya)
    to_ballot(client, kenya, ref)
    given = give(client, assembly["germany"], "kenya", ref)
    assert given.status_code == 201, given.text
    # Execute: France votes no, the south yes; Germany is silent
    for slug in ("kenya", "brazil", "india"):
        assert cast(client, assembly[slug], ref, "yes").status_code == 201
    assert cast(client, assembly["france"], ref, "no").status_code == 201
    decided = client.post(f"/api/proposals/{ref}/close", headers=kenya.headers).json()
    # Assert: Germany's "yes" by proxy counts in the north (Germany's bloc), not in the south
    # (Kenya's): the north is 1–1
    arithmetic = decided["arithmetic"]
    assert arithmetic["counts"]["yes"] == 4
    assert arithmetic["blocs"]["global-north"]["yes"] == 1
    assert arithmetic["blocs"]["global-south"]["yes"] == 3
    assert {b["member"]: b.get("proxy") for b in arithmetic["ballots"]}["germany"] == "kenya"
    assert arithmetic["proxies"] == [
        {
            "member": "germany",
            "holder": "kenya",
            "entry": given.json()["log_index"],
            "counted": True,
            "why": "counted",
        }
    ]
    bodies = [json.loads(b) for b in db.scalars(select(LogEntry.body).order_by(LogEntry.index))]
    recount = ballots.recount(bodies)
    assert recount[0]["matches"], recount
    # a proxy whose signature does not hold is ignored by the recount, which then disagrees
    bodies[given.json()["log_index"]]["content"]["payload"]["holder"] = "brazil"
    tampered = ballots.recount(bodies)[0]
    assert not tampered["matches"]
    assert {d["field"] for d in tampered["differences"]} >= {"ballot:germany", "proxies"}


def test_the_delegating_members_own_ballot_wins(
    client: TestClient, assembly: dict[str, Any]
) -> None:
    kenya = assembly["kenya"]
    ref = method_resolution(client, kenya, {"name": "irv", "options": ["a", "b"]})
    assert give(client, assembly["france"], "germany", ref).status_code == 201
    assert vote(client, assembly["germany"], ref, "irv", ["b"]).status_code == 201
    assert vote(client, assembly["france"], ref, "irv", ["a"]).status_code == 201
    for slug in ("kenya", "brazil"):
        assert vote(client, assembly[slug], ref, "irv", ["a"]).status_code == 201
    decided = client.post(f"/api/proposals/{ref}/close", headers=kenya.headers).json()
    arithmetic = decided["arithmetic"]
    assert {b["member"]: b["vote"] for b in arithmetic["ballots"]}["france"] == ["a"]
    assert arithmetic["proxies"][0]["why"] == "own_vote"
    assert not arithmetic["proxies"][0]["counted"]
    assert client.get("/api/governance/recount").json()[0]["matches"]


def test_the_charter_caps_the_proxies_one_member_carries(
    client: TestClient, assembly: dict[str, Any]
) -> None:
    kenya = assembly["kenya"]
    ref = resolution(client, kenya)
    to_ballot(client, kenya, ref)
    assert give(client, assembly["brazil"], "kenya", ref).status_code == 201
    assert give(client, assembly["india"], "kenya", ref).status_code == 201
    third = give(client, assembly["france"], "kenya", ref)
    assert third.status_code == 409
    assert third.json()["error"]["code"] == "proxy.cap"


def test_a_revoked_proxy_does_not_count_and_only_its_giver_revokes(
    client: TestClient, assembly: dict[str, Any], db: Session
) -> None:
    kenya = assembly["kenya"]
    ref = resolution(client, kenya)
    to_ballot(client, kenya, ref)
    given = give(client, assembly["germany"], "france", ref).json()
    stranger = client.post(f"/api/proxies/{given['id']}/revoke", headers=kenya.headers)
    assert stranger.status_code == 404
    revoked = client.post(f"/api/proxies/{given['id']}/revoke", headers=assembly["germany"].headers)
    assert revoked.status_code == 200 and revoked.json()["revoked"]
    for slug in ("kenya", "france"):
        assert cast(client, assembly[slug], ref, "yes").status_code == 201
    decided = client.post(f"/api/proposals/{ref}/close", headers=kenya.headers).json()
    assert decided["arithmetic"]["proxies"] == []
    assert "germany" not in {b["member"] for b in decided["arithmetic"]["ballots"]}
    late = client.post(f"/api/proxies/{given['id']}/revoke", headers=assembly["germany"].headers)
    assert late.status_code == 404
    assert client.get("/api/governance/recount").json()[0]["matches"]


def test_a_proxy_must_be_signed_by_the_delegating_members_key(
    client: TestClient, assembly: dict[str, Any]
) -> None:
    kenya = assembly["kenya"]
    ref = resolution(client, kenya)
    to_ballot(client, kenya, ref)
    forged = signed_proxy(assembly["germany"], "kenya", ref)
    forged["signature"] = keys.sign(kenya.key, proxies.message(forged["payload"]))
    refused = client.post("/api/proxies", headers=assembly["germany"].headers, json=forged)
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "signature.invalid"
    # and a delegate cannot give another member's vote away
    other = client.post(
        "/api/proxies", headers=kenya.headers, json=signed_proxy(assembly["germany"], "kenya", ref)
    )
    assert other.status_code == 403
    both = give(client, assembly["germany"], "kenya", ref, **{"from": "2026-01-01T00:00:00Z"})
    assert both.json()["error"]["code"] == "proxy.invalid"
    by_id = give(client, assembly["germany"], str(kenya.member.id), ref)
    assert by_id.json()["error"]["code"] == "proxy.invalid"
    numbered = give(client, assembly["germany"], "kenya", "99999999999999999999")
    assert numbered.json()["error"]["code"] == "proxy.invalid"


def test_a_period_proxy_applies_to_ballots_closing_within_it(
    client: TestClient, assembly: dict[str, Any]
) -> None:
    kenya = assembly["kenya"]
    ref = resolution(client, kenya)
    to_ballot(client, kenya, ref)
    now = utcnow()
    start = (now - timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    end = (now + timedelta(days=1)).isoformat().replace("+00:00", "Z")
    assert (
        give(client, assembly["india"], "brazil", **{"from": start, "until": end}).status_code
        == 201
    )
    for slug in ("kenya", "brazil", "france", "germany"):
        assert cast(client, assembly[slug], ref, "yes").status_code == 201
    decided = client.post(f"/api/proposals/{ref}/close", headers=kenya.headers).json()
    assert decided["arithmetic"]["counts"]["yes"] == 5
    assert client.get("/api/governance/recount").json()[0]["matches"]


def test_a_changed_proxy_row_fails_the_full_audit(
    client: TestClient,
    assembly: dict[str, Any],
    sessions: Any,
    live_server: str,
    tmp_path: Any,
    monkeypatch: Any,
) -> None:
    from sqlalchemy import text
    from typer.testing import CliRunner

    from concord.cli import app

    # Prepare: a decision with a proxy that audits clean
    monkeypatch.setenv("CONCORD_AUDIT_DIR", str(tmp_path / "audit"))
    kenya = assembly["kenya"]
    ref = resolution(client, kenya)
    to_ballot(client, kenya, ref)
    given = give(client, assembly["germany"], "kenya", ref).json()
    for slug in ("kenya", "brazil", "france"):
        assert cast(client, assembly[slug], ref, "yes").status_code == 201
    assert client.post(f"/api/proposals/{ref}/close", headers=kenya.headers).status_code == 200
    runner = CliRunner()
    clean = runner.invoke(app, ["audit", live_server, "--full"])
    assert clean.exit_code == 0, clean.output
    # Execute: the served proxy is marked revoked in the database, the log left alone
    with sessions() as db, db.begin():
        db.execute(text("UPDATE governance_proxies SET revoked_at = created_at"))
    audited = runner.invoke(app, ["audit", live_server, "--full"])
    # Assert
    assert audited.exit_code != 0
    assert "audit.served_differs" in audited.output
    assert f"entry {given['log_index']}" in audited.output and "proxy.revoked" in audited.output
