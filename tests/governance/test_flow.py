"""A proposal from draft to decision through the API, with the tally recounted from the log."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from tests.governance.conftest import cast, resolution, signed, to_ballot

from concord.events import Event
from concord.governance import ballots
from concord.governance.tables import Ballot, Proposal
from concord.ledger.tables import LogEntry


def test_resolution_adopted_by_broad_consensus(
    client: TestClient, assembly: dict[str, Any], db: Session
) -> None:
    # Prepare
    kenya = assembly["kenya"]
    ref = resolution(client, kenya)
    assert ref.startswith("CR-")
    to_ballot(client, kenya, ref)
    # Execute: 4 yes (both blocs), 1 abstain; France first votes no then changes to yes
    assert cast(client, assembly["france"], ref, "no").status_code == 201
    for slug in ("kenya", "brazil", "france", "germany"):
        assert cast(client, assembly[slug], ref, "yes").status_code == 201
    assert cast(client, assembly["india"], ref, "abstain").status_code == 201
    decided = client.post(f"/api/proposals/{ref}/close", headers=kenya.headers)
    # Assert
    assert decided.status_code == 200, decided.text
    arithmetic = decided.json()["arithmetic"]
    assert decided.json()["outcome"] == "adopted"
    assert arithmetic["counts"] == {"yes": 4, "no": 0, "abstain": 1, "objection": 0}
    assert arithmetic["blocs"]["global-south"]["yes"] == 2
    assert arithmetic["blocs"]["global-north"]["yes"] == 2
    assert {b["member"]: b["choice"] for b in arithmetic["ballots"]}["france"] == "yes"
    assert client.get(f"/api/proposals/{ref}").json()["status"] == "adopted"
    recount = client.get("/api/governance/recount").json()
    assert recount == [
        {
            "proposal": ref,
            "logged_outcome": "adopted",
            "recounted_outcome": "adopted",
            "counts": arithmetic["counts"],
            "matches": True,
        }
    ]
    kinds = db.scalars(select(LogEntry.kind).order_by(LogEntry.index)).all()
    assert kinds.count("governance.ballot") == 6
    assert "governance.decision" in kinds


def test_rejected_without_a_bloc_majority(client: TestClient, assembly: dict[str, Any]) -> None:
    kenya = assembly["kenya"]
    ref = resolution(client, kenya)
    to_ballot(client, kenya, ref)
    for slug in ("kenya", "brazil", "india"):
        cast(client, assembly[slug], ref, "yes")
    cast(client, assembly["france"], ref, "no")
    cast(client, assembly["germany"], ref, "no")
    decision = client.post(f"/api/proposals/{ref}/close", headers=kenya.headers).json()
    # 3/5 = 60 % < 2/3 and the North's majority is missing
    assert decision["outcome"] == "rejected"
    checks = {c["check"]: c["met"] for c in decision["arithmetic"]["checks"]}
    assert checks["bloc_majority:global-north"] is False
    assert checks["bloc_majority:global-south"] is True
    assert checks["threshold"] is False


def test_recount_detects_a_tampered_log(
    client: TestClient, assembly: dict[str, Any], db: Session
) -> None:
    kenya = assembly["kenya"]
    ref = resolution(client, kenya)
    to_ballot(client, kenya, ref)
    for slug in ("kenya", "brazil", "france", "germany"):
        cast(client, assembly[slug], ref, "yes")
    client.post(f"/api/proposals/{ref}/close", headers=kenya.headers)
    bodies = [json.loads(b) for b in db.scalars(select(LogEntry.body).order_by(LogEntry.index))]
    assert all(r["matches"] for r in ballots.recount(bodies))
    # a forged ballot: the choice changed after signing
    for body in bodies:
        if (
            body["kind"] == "governance.ballot"
            and body["content"]["payload"]["member"] == "germany"
        ):
            body["content"]["payload"]["choice"] = "no"
    again = ballots.recount(bodies)
    assert again[0]["matches"] is False
    assert again[0]["counts"]["yes"] == 3


def test_bad_ballots_are_refused_and_change_nothing(
    client: TestClient, assembly: dict[str, Any], make: Any, db: Session
) -> None:
    kenya, france = assembly["kenya"], assembly["france"]
    ref = resolution(client, kenya)
    # not open yet
    assert cast(client, france, ref, "yes").json()["error"]["code"] == "ballot.closed"
    to_ballot(client, kenya, ref)
    # a signature by another key
    forged = signed(france, ref, "yes")
    forged["signature"] = signed(kenya, ref, "yes")["signature"]
    bad = client.post(
        f"/api/proposals/{ref}/ballots", headers=france.headers, json={"ballots": [forged]}
    )
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "signature.invalid"
    # twice in one request
    twice = client.post(
        f"/api/proposals/{ref}/ballots",
        headers=france.headers,
        json={"ballots": [signed(france, ref, "yes"), signed(france, ref, "no")]},
    )
    assert twice.json()["error"]["code"] == "ballot.duplicate"
    # for another member
    other = client.post(
        f"/api/proposals/{ref}/ballots",
        headers=france.headers,
        json={"ballots": [signed(kenya, ref, "yes")]},
    )
    assert other.status_code == 403 and other.json()["error"]["code"] == "auth.not_your_member"
    # an objection without a reason
    assert cast(client, france, ref, "objection").json()["error"]["code"] == "ballot.malformed"
    # a replayed ballot
    good = signed(france, ref, "yes")
    assert (
        client.post(
            f"/api/proposals/{ref}/ballots", headers=france.headers, json={"ballots": [good]}
        ).status_code
        == 201
    )
    replay = client.post(
        f"/api/proposals/{ref}/ballots", headers=france.headers, json={"ballots": [good]}
    )
    assert replay.json()["error"]["code"] == "ballot.replay"
    # a suspended member
    staff = make.secretariat()
    client.post("/api/members/germany/suspend", headers=staff.headers, json={"reason": "test"})
    suspended = cast(client, assembly["germany"], ref, "yes")
    assert suspended.json()["error"]["code"] == "member.not_active"
    # an observer
    observer = make.observer()
    assert (
        client.post(
            f"/api/proposals/{ref}/ballots",
            headers=observer.headers,
            json={"ballots": [signed(france, ref, "yes")]},
        ).status_code
        == 403
    )
    assert db.scalar(select(func.count()).select_from(Ballot)) == 1
    # after close
    client.post(f"/api/proposals/{ref}/close", headers=staff.headers)
    assert cast(client, france, ref, "no").json()["error"]["code"] == "ballot.closed"
    assert db.scalar(select(func.count()).select_from(Ballot)) == 1


def test_lifecycle_rights_and_amendments(
    client: TestClient, assembly: dict[str, Any], db: Session
) -> None:
    kenya, france = assembly["kenya"], assembly["france"]
    ref = resolution(client, kenya)
    refused = client.post(f"/api/proposals/{ref}/deliberation", headers=france.headers)
    assert refused.json()["error"]["code"] == "proposal.not_sponsor"
    early = client.post(f"/api/proposals/{ref}/ballot", headers=kenya.headers, json={})
    assert early.json()["error"]["code"] == "proposal.wrong_phase"
    client.post(f"/api/proposals/{ref}/deliberation", headers=kenya.headers)
    amendment = client.post(
        f"/api/proposals/{ref}/amendments",
        headers=france.headers,
        json={"language": "en", "text": "The organisation promotes open models."},
    )
    assert amendment.status_code == 201
    pending = client.post(f"/api/proposals/{ref}/ballot", headers=kenya.headers, json={})
    assert pending.json()["error"]["code"] == "proposal.invalid"
    assert (
        client.post(
            f"/api/proposals/{ref}/amendments/{amendment.json()['id']}/accept",
            headers=france.headers,
        ).status_code
        == 403
    )
    accepted = client.post(
        f"/api/proposals/{ref}/amendments/{amendment.json()['id']}/accept", headers=kenya.headers
    )
    assert accepted.json()["status"] == "accepted"
    assert (
        client.get(f"/api/proposals/{ref}").json()["texts"]["en"]
        == "The organisation promotes open models."
    )
    withdrawn = client.post(
        f"/api/proposals/{ref}/withdraw", headers=kenya.headers, json={"reason": "merged"}
    )
    assert withdrawn.json()["status"] == "withdrawn"
    phases = [
        json.loads(b)["content"]["status"]
        for b in db.scalars(
            select(LogEntry.body)
            .where(LogEntry.kind == "governance.phase")
            .order_by(LogEntry.index)
        )
    ]
    assert phases == ["deliberation", "withdrawn"]


def test_project_adopted_publishes_event(
    client: TestClient, assembly: dict[str, Any], db: Session
) -> None:
    kenya = assembly["kenya"]
    spec = {
        "task": "logreg-digits",
        "participants": {"members": ["kenya", "france"], "blocs": ["global-south"]},
        "rounds": 5,
        "min_participants": 3,
    }
    made = client.post(
        "/api/proposals",
        headers=kenya.headers,
        json={
            "kind": "project",
            "title": "Digits",
            "texts": {"en": "Train digits."},
            "body": spec,
            "cosponsors": ["france"],
        },
    )
    assert made.status_code == 201, made.text
    ref = made.json()["reference"]
    # France co-sponsors: it may move the proposal on
    assert (
        client.post(
            f"/api/proposals/{ref}/deliberation", headers=assembly["france"].headers
        ).status_code
        == 200
    )
    client.post(f"/api/proposals/{ref}/ballot", headers=kenya.headers, json={})
    for slug in ("kenya", "brazil", "india", "france", "germany"):
        cast(client, assembly[slug], ref, "yes")
    assert (
        client.post(f"/api/proposals/{ref}/close", headers=kenya.headers).json()["outcome"]
        == "adopted"
    )
    event = db.scalars(select(Event).where(Event.name == "governance.project_adopted")).one()
    proposal = db.scalars(select(Proposal).where(Proposal.reference == ref)).one()
    assert event.payload["proposal_id"] == proposal.id
    assert event.payload["sponsor"] == "kenya"
    assert event.payload["spec"]["task"] == "logreg-digits"
    assert event.payload["spec"]["min_participants"] == 3


def test_job_spec_checked_at_proposal_time(
    client: TestClient, assembly: dict[str, Any], db: Session
) -> None:
    kenya = assembly["kenya"]

    def propose(body: dict[str, Any]) -> Any:
        return client.post(
            "/api/proposals",
            headers=kenya.headers,
            json={"kind": "project", "title": "P", "texts": {"en": "x"}, "body": body},
        )

    base = {
        "task": "mnist-2nn",
        "participants": {"members": ["kenya"]},
        "rounds": 3,
        "min_participants": 1,
    }
    assert (
        propose({**base, "participants": {"members": ["atlantis"]}}).json()["error"]["code"]
        == "member.unknown"
    )
    assert (
        propose({**base, "participants": {"blocs": ["nowhere"]}}).json()["error"]["code"]
        == "bloc.unknown"
    )
    assert propose({**base, "min_participants": 2}).json()["error"]["code"] == "proposal.job_spec"
    assert propose({**base, "rounds": 0}).json()["error"]["code"] == "proposal.job_spec"
    assert db.scalar(select(func.count()).select_from(Proposal)) == 0
    assert propose(base).status_code == 201


def test_amendment_put_to_its_own_ballot(
    client: TestClient, assembly: dict[str, Any], db: Session
) -> None:
    kenya = assembly["kenya"]
    ref = resolution(client, kenya)
    client.post(f"/api/proposals/{ref}/deliberation", headers=kenya.headers)
    made = client.post(
        f"/api/proposals/{ref}/amendments",
        headers=assembly["germany"].headers,
        json={"language": "fr", "text": "L'organisation promeut les modèles ouverts."},
    ).json()
    base = f"/api/proposals/{ref}/amendments/{made['id']}"
    assert client.post(f"{base}/ballot", headers=kenya.headers).json()["status"] == "ballot"
    # the proposal's own ballot waits for the amendment
    waiting = client.post(f"/api/proposals/{ref}/ballot", headers=kenya.headers, json={})
    assert waiting.json()["error"]["code"] == "proposal.invalid"
    target = f"{ref}/A{made['id']}"
    wrong = client.post(
        f"{base}/ballots", headers=kenya.headers, json={"ballots": [signed(kenya, ref, "yes")]}
    )
    assert wrong.json()["error"]["code"] == "ballot.malformed"  # names the proposal, not A<id>
    for slug in assembly:
        answer = client.post(
            f"{base}/ballots",
            headers=assembly[slug].headers,
            json={"ballots": [signed(assembly[slug], target, "yes")]},
        )
        assert answer.status_code == 201, answer.text
    closed = client.post(f"{base}/close", headers=kenya.headers).json()
    assert closed["status"] == "adopted" and closed["arithmetic"]["counts"]["yes"] == 5
    texts = client.get(f"/api/proposals/{ref}").json()["texts"]
    assert texts["fr"] == "L'organisation promeut les modèles ouverts."
    recount = client.get("/api/governance/recount").json()
    assert recount == [
        {
            "proposal": target,
            "logged_outcome": "adopted",
            "recounted_outcome": "adopted",
            "counts": closed["arithmetic"]["counts"],
            "matches": True,
        }
    ]
    assert (
        client.post(f"/api/proposals/{ref}/ballot", headers=kenya.headers, json={}).status_code
        == 200
    )
