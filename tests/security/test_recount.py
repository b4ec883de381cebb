"""Issue #13, item 10: the recount derives the counted ballots from the ballot entries in the
log alone; a key counts only inside its interval in the log; and `concord audit --full` checks
that the ballots and decisions the API serves are what the log says."""

from __future__ import annotations

import base64
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker
from tests.commons.conftest import publish, safetensors_bytes
from tests.federation.test_publication import _run_one_round
from typer.testing import CliRunner

from concord.cli import app
from concord.db import utcnow
from concord.governance import ballots
from concord.governance.tables import Ballot, Proposal
from concord.ledger import log
from concord.ledger.tables import LogEntry
from concord.members import keys
from concord.members.tables import Member

ASSEMBLY = [("kenya", "KE"), ("brazil", "BR"), ("india", "IN"), ("france", "FR"), ("germany", "DE")]


@pytest.fixture
def assembly(make: Any) -> dict[str, Any]:
    return {slug: make.delegate(slug, code) for slug, code in ASSEMBLY}


@pytest.fixture
def audit_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "audit"
    monkeypatch.setenv("CONCORD_AUDIT_DIR", str(folder))
    return folder


def _resolution(client: TestClient, sponsor: Any) -> str:
    made = client.post(
        "/api/proposals",
        headers=sponsor.headers,
        json={"kind": "resolution", "title": "On open models", "texts": {"en": "Open models."}},
    )
    assert made.status_code == 201, made.text
    ref = str(made.json()["reference"])
    for step in ("deliberation", "ballot"):
        done = client.post(f"/api/proposals/{ref}/{step}", headers=sponsor.headers, json={})
        assert done.status_code == 200, done.text
    return ref


def _signed(actor: Any, ref: str, choice: str, private: Any = None, **payload: Any) -> Any:
    body = ballots.make_payload(ref, actor.member.slug, choice)
    body.update(payload)
    return {"payload": body, "signature": keys.sign(private or actor.key, ballots.message(body))}


def _cast(client: TestClient, actor: Any, ref: str, choice: str, **kw: Any) -> Any:
    return client.post(
        f"/api/proposals/{ref}/ballots",
        headers=actor.headers,
        json={"ballots": [_signed(actor, ref, choice, **kw)]},
    )


def _tamper(sessions: sessionmaker[Session], sql: str, **params: Any) -> None:
    with sessions() as db, db.begin():
        db.execute(text(sql), params)


def test_a_valid_ballot_dropped_by_the_hub_is_named_by_the_recount(
    client: TestClient, assembly: dict[str, Any], db: Session, sessions: sessionmaker[Session]
) -> None:
    # Prepare: four yes and France's valid "no", each logged
    kenya = assembly["kenya"]
    ref = _resolution(client, kenya)
    for slug in ("kenya", "brazil", "india", "germany"):
        assert _cast(client, assembly[slug], ref, "yes").status_code == 201
    assert _cast(client, assembly["france"], ref, "no").status_code == 201
    no_entry = db.scalars(
        select(Ballot.log_index).where(Ballot.member_id == assembly["france"].member.id)
    ).one()
    # Execute: the hub drops France's ballot from its table, then closes (4/4 yes)
    _tamper(sessions, "DELETE FROM governance_ballots WHERE log_index = :i", i=no_entry)
    decided = client.post(f"/api/proposals/{ref}/close", headers=kenya.headers)
    assert decided.status_code == 200
    recount = client.get("/api/governance/recount").json()
    # Assert: the recount counts France from the log and names the omitted ballot
    assert decided.json()["arithmetic"]["counts"]["no"] == 0
    assert recount[0]["matches"] is False
    assert recount[0]["counts"]["no"] == 1
    assert {"field": "ballot:france", "entry": no_entry, "logged": None, "recounted": "no"} in (
        recount[0]["differences"]
    )


def test_a_rotated_out_key_is_refused_by_the_hub_and_flagged_in_the_log(
    client: TestClient,
    assembly: dict[str, Any],
    sessions: sessionmaker[Session],
    live_server: str,
    audit_state: Path,
) -> None:
    # Prepare: Kenya votes yes, then rotates its key
    kenya = assembly["kenya"]
    ref = _resolution(client, kenya)
    for slug in ("kenya", "brazil", "india", "france", "germany"):
        assert _cast(client, assembly[slug], ref, "yes").status_code == 201
    old = kenya.key
    new = keys.generate()
    with sessions() as s, s.begin():
        rotated_at = keys.register(
            s, s.get(Member, kenya.member.id), keys.public_base64(new)
        ).created_at
    # Execute 1: the old key signs a later ballot; the new key signs one dated before it existed
    by_old = _cast(client, kenya, ref, "no", private=old)
    backdated = (rotated_at - timedelta(microseconds=1)).isoformat().replace("+00:00", "Z")
    by_new_backdated = _cast(client, kenya, ref, "no", private=new, time=backdated)
    # Assert 1: the hub refuses both
    assert by_old.status_code == 422
    assert by_old.json()["error"]["code"] == "signature.invalid"
    assert by_new_backdated.status_code == 422
    assert by_new_backdated.json()["error"]["code"] == "key.not_valid_at"
    # Execute 2: a dishonest hub logs the old key's ballot anyway, counts it and decides
    payload = ballots.make_payload(ref, "kenya", "no")
    signature = keys.sign(old, ballots.message(payload))
    raw = base64.b64decode(keys.public_base64(old))
    with sessions() as s, s.begin():
        entry = log.append(
            s,
            "governance.ballot",
            {
                "proposal": ref,
                "payload": payload,
                "signature": signature,
                "public_key": base64.b64encode(raw).decode(),
                "fingerprint": keys.fingerprint(raw),
            },
            member_id=kenya.member.id,
        )
        row = s.scalars(select(Ballot).where(Ballot.member_id == kenya.member.id)).one()
        row.choice, row.payload, row.signature = "no", payload, signature
        row.nonce, row.log_index, row.cast_at = payload["nonce"], entry.index, utcnow()
        p = s.scalars(select(Proposal).where(Proposal.reference == ref)).one()
        ballots.close(s, None, p)
    # Assert 2: the recount and `concord audit --full` reject the old key's ballot
    recount = client.get("/api/governance/recount").json()
    assert recount[0]["matches"] is False
    audited = CliRunner().invoke(app, ["audit", live_server, "--full"])
    assert audited.exit_code != 0
    assert "audit.recount_mismatch" in audited.output and "kenya" in audited.output


def test_a_changed_ballot_row_fails_the_full_audit(
    client: TestClient,
    assembly: dict[str, Any],
    db: Session,
    sessions: sessionmaker[Session],
    live_server: str,
    audit_state: Path,
) -> None:
    # Prepare: a decided ballot that audits clean
    kenya = assembly["kenya"]
    ref = _resolution(client, kenya)
    for slug in ("kenya", "brazil", "india", "france", "germany"):
        assert _cast(client, assembly[slug], ref, "yes").status_code == 201
    assert client.post(f"/api/proposals/{ref}/close", headers=kenya.headers).status_code == 200
    runner = CliRunner()
    clean = runner.invoke(app, ["audit", live_server, "--full"])
    assert clean.exit_code == 0, clean.output
    entry = db.scalars(
        select(Ballot.log_index).where(Ballot.member_id == assembly["france"].member.id)
    ).one()
    # Execute: France's served ballot is changed in the database, the log left alone
    _tamper(sessions, "UPDATE governance_ballots SET choice = 'no' WHERE log_index = :i", i=entry)
    served = client.get(f"/api/proposals/{ref}/ballots").json()
    audited = runner.invoke(app, ["audit", live_server, "--full"])
    # Assert: the API serves the change, and the audit names it
    assert {b["member"]: b["choice"] for b in served}["france"] == "no"
    assert audited.exit_code != 0
    assert "audit.served_differs" in audited.output
    assert f"entry {entry}" in audited.output and "france.choice" in audited.output


def test_a_changed_decision_row_fails_the_full_audit(
    client: TestClient,
    assembly: dict[str, Any],
    sessions: sessionmaker[Session],
    live_server: str,
    audit_state: Path,
) -> None:
    # Prepare
    kenya = assembly["kenya"]
    ref = _resolution(client, kenya)
    for slug in ("kenya", "brazil", "india", "france", "germany"):
        assert _cast(client, assembly[slug], ref, "yes").status_code == 201
    decided = client.post(f"/api/proposals/{ref}/close", headers=kenya.headers).json()
    # Execute: the served decision says "rejected"
    _tamper(sessions, "UPDATE governance_decisions SET outcome = 'rejected'")
    audited = CliRunner().invoke(app, ["audit", live_server, "--full"])
    # Assert
    assert audited.exit_code != 0, audited.output
    assert "audit.served_differs" in audited.output
    assert f"entry {decided['log_index']}" in audited.output and "outcome" in audited.output


def test_a_changed_publication_fails_the_full_audit(
    client: TestClient,
    assembly: dict[str, Any],
    db: Session,
    sessions: sessionmaker[Session],
    live_server: str,
    audit_state: Path,
) -> None:
    # Prepare: a published model that audits clean
    publish(client, assembly["kenya"], "kenya", "asr", {"model.safetensors": safetensors_bytes()})
    entry = db.scalars(select(LogEntry.index).where(LogEntry.kind == "commons.published")).one()
    runner = CliRunner()
    clean = runner.invoke(app, ["audit", live_server, "--full"])
    assert clean.exit_code == 0, clean.output
    # Execute: the served provenance is rewritten in the database, the log left alone
    _tamper(sessions, """UPDATE commons_revisions SET provenance = '{"decision": "forged"}'""")
    audited = runner.invoke(app, ["audit", live_server, "--full"])
    # Assert
    assert audited.exit_code != 0
    assert "audit.served_differs" in audited.output
    assert f"entry {entry}" in audited.output and "provenance" in audited.output


def test_a_changed_training_round_fails_the_full_audit(
    client: TestClient,
    make: Any,
    db: Session,
    sessions: sessionmaker[Session],
    settings: Any,
    live_server: str,
    audit_state: Path,
) -> None:
    # Prepare: a one-round job, closed and logged, that audits clean
    _run_one_round(client, sessions, settings, make.delegate("kenya", "KE"), "kenya/digits")
    entry = db.scalars(select(LogEntry.index).where(LogEntry.kind == "federation.round")).one()
    runner = CliRunner()
    clean = runner.invoke(app, ["audit", live_server, "--full"])
    assert clean.exit_code == 0, clean.output
    # Execute: the served round claims more examples than were logged
    _tamper(sessions, "UPDATE fed_rounds SET examples = 4000 WHERE log_index = :i", i=entry)
    audited = runner.invoke(app, ["audit", live_server, "--full"])
    # Assert
    assert audited.exit_code != 0
    assert "audit.served_differs" in audited.output
    assert f"entry {entry}" in audited.output and "round 1.examples" in audited.output
