"""Issue #13, item 2: an earlier signed ballot cannot be sent again. The signed time is an
ISO-8601 UTC time inside the ballot's window, strictly later than the member's current ballot
on that question, and a nonce the member used once is refused for ever. Each refusal is coded,
logs nothing and changes nothing; the recount from the log applies the same rules."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from concord.db import utcnow
from concord.governance import ballots
from concord.ledger.tables import LogEntry
from concord.members import keys


@pytest.fixture
def members(make: Any) -> dict[str, Any]:
    return {slug: make.delegate(slug, code) for slug, code in [("kenya", "KE"), ("france", "FR")]}


def _resolution(client: TestClient, sponsor: Any, title: str = "On open models") -> str:
    made = client.post(
        "/api/proposals",
        headers=sponsor.headers,
        json={"kind": "resolution", "title": title, "texts": {"en": "Open models."}},
    )
    assert made.status_code == 201, made.text
    ref = str(made.json()["reference"])
    for step in ("deliberation", "ballot"):
        done = client.post(f"/api/proposals/{ref}/{step}", headers=sponsor.headers, json={})
        assert done.status_code == 200, done.text
    return ref


def _signed(actor: Any, ref: str, choice: str, **payload: Any) -> dict[str, Any]:
    body = ballots.make_payload(ref, actor.member.slug, choice)
    body.update(payload)
    return {"payload": body, "signature": keys.sign(actor.key, ballots.message(body))}


def _send(client: TestClient, actor: Any, ref: str, signed: dict[str, Any]) -> Any:
    return client.post(
        f"/api/proposals/{ref}/ballots", headers=actor.headers, json={"ballots": [signed]}
    )


def _state(client: TestClient, db: Session, ref: str) -> tuple[int, dict[str, str]]:
    logged = db.scalar(
        select(func.count()).select_from(LogEntry).where(LogEntry.kind == "governance.ballot")
    )
    served = client.get(f"/api/proposals/{ref}/ballots").json()
    return int(logged or 0), {b["member"]: b["choice"] for b in served}


def test_the_first_ballot_sent_again_after_a_new_vote_is_refused(
    client: TestClient, members: dict[str, Any], db: Session
) -> None:
    # Prepare: France votes yes, then no
    france = members["france"]
    ref = _resolution(client, members["kenya"])
    first = _signed(france, ref, "yes")
    assert _send(client, france, ref, first).status_code == 201
    assert _send(client, france, ref, _signed(france, ref, "no")).status_code == 201
    before = _state(client, db, ref)
    # Execute: the first signed ballot, unchanged
    again = _send(client, france, ref, first)
    # Assert: refused with a code; the vote stays "no"; nothing logged
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "ballot.replay"
    assert _state(client, db, ref) == before
    assert before[1] == {"france": "no"}


def test_a_fresh_nonce_with_an_earlier_time_is_refused(
    client: TestClient, members: dict[str, Any], db: Session
) -> None:
    # Prepare: yes at t + 2 s
    france = members["france"]
    ref = _resolution(client, members["kenya"])
    now = utcnow()
    later = (now + timedelta(seconds=2)).isoformat().replace("+00:00", "Z")
    assert _send(client, france, ref, _signed(france, ref, "yes", time=later)).status_code == 201
    before = _state(client, db, ref)
    # Execute: a new nonce, but signed at t + 1 s
    earlier = (now + timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
    answer = _send(client, france, ref, _signed(france, ref, "no", time=earlier))
    # Assert
    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "ballot.stale"
    assert _state(client, db, ref) == before


@pytest.mark.parametrize(
    ("time", "status", "code"),
    [
        ("not-a-time", 422, "ballot.malformed"),
        ("2026-11-22T10:00:00+02:00", 422, "ballot.malformed"),
        ("2026-11-22 10:00:00", 422, "ballot.malformed"),
        ("2026-13-45T10:00:00Z", 422, "ballot.malformed"),
        ("before-opening", 422, "ballot.out_of_window"),
        ("in-an-hour", 422, "ballot.out_of_window"),
    ],
)
def test_a_bad_signed_time_is_refused(
    client: TestClient, members: dict[str, Any], db: Session, time: str, status: int, code: str
) -> None:
    # Prepare
    france = members["france"]
    ref = _resolution(client, members["kenya"])
    shifts = {"before-opening": timedelta(days=-1), "in-an-hour": timedelta(hours=1)}
    if time in shifts:
        time = (utcnow() + shifts[time]).isoformat().replace("+00:00", "Z")
    before = _state(client, db, ref)
    # Execute
    answer = _send(client, france, ref, _signed(france, ref, "yes", time=time))
    # Assert
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == code
    assert _state(client, db, ref) == before


def test_a_nonce_freed_by_a_new_vote_is_refused_on_another_proposal(
    client: TestClient, members: dict[str, Any], db: Session
) -> None:
    # Prepare: France's first nonce on one proposal, then a new vote replaces that ballot
    france, kenya = members["france"], members["kenya"]
    one = _resolution(client, kenya, "One")
    two = _resolution(client, kenya, "Two")
    first = _signed(france, one, "yes")
    assert _send(client, france, one, first).status_code == 201
    assert _send(client, france, one, _signed(france, one, "no")).status_code == 201
    before = _state(client, db, two)
    # Execute: a new ballot on the other proposal that reuses the first nonce
    answer = _send(
        client, france, two, _signed(france, two, "yes", nonce=first["payload"]["nonce"])
    )
    # Assert
    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "ballot.replay"
    assert _state(client, db, two) == before


def test_the_recount_ignores_a_replayed_ballot_in_the_log(
    client: TestClient, members: dict[str, Any], db: Session
) -> None:
    # Prepare: France votes yes then no; the ballot closes with "no" counted
    france, kenya = members["france"], members["kenya"]
    ref = _resolution(client, kenya)
    assert _send(client, france, ref, _signed(france, ref, "yes")).status_code == 201
    assert _send(client, france, ref, _signed(france, ref, "no")).status_code == 201
    assert client.post(f"/api/proposals/{ref}/close", headers=kenya.headers).status_code == 200
    bodies = [json.loads(b) for b in db.scalars(select(LogEntry.body).order_by(LogEntry.index))]
    assert all(r["matches"] for r in ballots.recount(bodies))
    # Execute: a log in which the first ballot was accepted again before the decision
    first = next(
        b
        for b in bodies
        if b["kind"] == "governance.ballot" and b["content"]["payload"]["choice"] == "yes"
    )
    decision = next(i for i, b in enumerate(bodies) if b["kind"] == "governance.decision")
    replayed = [*bodies[:decision], first, *bodies[decision:]]
    # Assert: the replay is not counted, so the decision ("no") still recounts
    again = ballots.recount(replayed)
    assert again[0]["matches"] is True, again
    assert again[0]["counts"]["no"] == 1
