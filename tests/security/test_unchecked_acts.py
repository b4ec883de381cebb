"""Only acts a member may take are accepted and logged (issue #13, item 9): a node declines
only the open round it was chosen for, signed with its member's key; an update's refusal is
logged only when the update was signed by a member chosen for the round. Everything else is
answered with a coded error and leaves the transparency log as it was."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from concord.client import HubClient
from concord.federation import jobs
from concord.federation.parameters import to_safetensors
from concord.federation.tables import Job
from concord.federation.tasks.logreg import DigitsLogReg
from concord.governance.jobspec import JobSpec
from concord.ledger.log import canonical_json, size
from concord.ledger.tables import LogEntry
from concord.members import keys


def _register(client: TestClient, actor: Any) -> None:
    from datetime import UTC, datetime

    when = datetime.now(UTC).isoformat()
    message = jobs.registration_message(actor.member.slug, ["logreg-digits"], when)
    answer = client.post(
        "/api/federation/nodes",
        json={
            "tasks": ["logreg-digits"],
            "signed_at": when,
            "signature": keys.sign(actor.key, message),
        },
        headers=actor.headers,
    )
    assert answer.status_code == 200, answer.text


@pytest.fixture
def round_one(client: TestClient, make: Any, sessions: Any, settings: Any) -> dict[str, Any]:
    """Kenya and Brazil are chosen for round 1 (open) of a two-round job; Peru is not in it."""
    actors = {
        slug: make.delegate(slug, code)
        for slug, code in [("kenya", "KE"), ("brazil", "BR"), ("peru", "PE")]
    }
    spec = JobSpec.model_validate(
        {
            "task": "logreg-digits",
            "participants": {"members": ["kenya", "brazil"]},
            "rounds": 2,
            "min_participants": 2,
            "round_deadline_s": 120,
            "local": {"epochs": 1, "batch_size": 10, "learning_rate": 0.3},
        }
    )
    with sessions() as s:
        job = jobs.create_job(s, settings, spec, title="Digits")
        s.commit()
        job_id = job.id
    for actor in actors.values():
        _register(client, actor)
    work = client.get("/api/federation/work", headers=actors["kenya"].headers)
    assert work.status_code == 200 and work.json()["round"] == 1
    return {**actors, "job": job_id}


def _decline_message(job_id: int, number: int, member: str) -> bytes:
    """What a node signs to decline (spelled out here, so that the format is pinned)."""
    return canonical_json(
        {"purpose": "concord.round-decline", "job": job_id, "round": number, "member": member}
    )


def _decline(
    client: TestClient,
    actor: Any,
    job_id: int,
    number: int,
    *,
    key: Any = None,
    body: Any = "signed",
) -> Any:
    if body == "signed":
        message = _decline_message(job_id, number, actor.member.slug)
        body = {"signature": keys.sign(key or actor.key, message)}
    return client.post(
        f"/api/federation/jobs/{job_id}/rounds/{number}/decline",
        headers=actor.headers,
        **({"json": body} if body is not None else {}),
    )


def _update(
    client: TestClient, actor: Any, job_id: int, number: int, params: Any, *, signed: bool = True
) -> Any:
    body = to_safetensors(params)
    sha = hashlib.sha256(body).hexdigest()
    message = jobs.update_message(job_id, number, actor.member.slug, sha, 10)
    return client.post(
        f"/api/federation/jobs/{job_id}/rounds/{number}/updates",
        content=body,
        headers={
            **actor.headers,
            "X-Concord-Examples": "10",
            "X-Concord-Signature": keys.sign(actor.key, message) if signed else "",
            "X-Concord-Metrics": json.dumps({}),
        },
    )


def _code(answer: Any) -> str:
    return str(answer.json()["error"]["code"])


def test_a_member_not_in_the_job_cannot_decline_its_round(
    client: TestClient, round_one: dict[str, Any], db: Session
) -> None:
    before = size(db)
    answer = _decline(client, round_one["peru"], round_one["job"], 1)
    assert answer.status_code == 403 and _code(answer) == "federation.not_selected"
    assert size(db) == before


def test_a_round_that_is_not_open_cannot_be_declined(
    client: TestClient, round_one: dict[str, Any], db: Session
) -> None:
    kenya, brazil, job_id = round_one["kenya"], round_one["brazil"], round_one["job"]
    before = size(db)
    # a round not yet opened, and a round that does not exist
    for number in (2, 99):
        answer = _decline(client, kenya, job_id, number)
        assert answer.status_code == 409 and _code(answer) == "federation.round_closed"
    assert size(db) == before
    # round 1 closes once both updates are in: declining it now is refused
    good = DigitsLogReg().init_parameters(0)
    assert _update(client, kenya, job_id, 1, good).status_code == 201
    assert _update(client, brazil, job_id, 1, good).status_code == 201
    closed = size(db)
    answer = _decline(client, kenya, job_id, 1)
    assert answer.status_code == 409 and _code(answer) == "federation.round_closed"
    assert size(db) == closed


def test_a_round_cannot_be_declined_after_sending_its_update(
    client: TestClient, round_one: dict[str, Any], db: Session
) -> None:
    kenya, job_id = round_one["kenya"], round_one["job"]
    assert _update(client, kenya, job_id, 1, DigitsLogReg().init_parameters(0)).status_code == 201
    before = size(db)
    answer = _decline(client, kenya, job_id, 1)
    assert answer.status_code == 409 and _code(answer) == "federation.duplicate_update"
    assert size(db) == before


def test_a_finished_job_cannot_be_declined(
    client: TestClient, round_one: dict[str, Any], db: Session
) -> None:
    db.execute(update(Job).where(Job.id == round_one["job"]).values(status="completed"))
    before = size(db)
    answer = _decline(client, round_one["kenya"], round_one["job"], 1)
    assert answer.status_code == 409 and _code(answer) == "federation.round_closed"
    assert size(db) == before


@pytest.mark.parametrize("how", ["no body", "empty signature", "another member's key"])
def test_an_unsigned_decline_is_refused(
    how: str, client: TestClient, round_one: dict[str, Any], db: Session
) -> None:
    kenya, job_id = round_one["kenya"], round_one["job"]
    before = size(db)
    if how == "no body":
        answer = _decline(client, kenya, job_id, 1, body=None)
    elif how == "empty signature":
        answer = _decline(client, kenya, job_id, 1, body={"signature": ""})
    else:
        answer = _decline(client, kenya, job_id, 1, key=round_one["brazil"].key)
    assert answer.status_code == 422
    assert _code(answer) in ("federation.decline_unsigned", "signature.invalid")
    assert size(db) == before


def test_a_valid_decline_is_logged(
    client: TestClient, round_one: dict[str, Any], db: Session
) -> None:
    before = size(db)
    answer = _decline(client, round_one["kenya"], round_one["job"], 1)
    assert answer.status_code == 200, answer.text
    assert answer.json()["log_index"] == before
    assert size(db) == before + 1
    entry = db.scalars(select(LogEntry).where(LogEntry.index == before)).one()
    assert entry.kind == "federation.node_declined"
    assert entry.member_id == round_one["kenya"].member.id


def test_the_nodes_decline_is_signed(
    live_server: str, round_one: dict[str, Any], db: Session
) -> None:
    """`concord node` declines through the same call, signed, and the hub logs it."""
    from concord.federation.node import _decline as node_decline

    kenya = round_one["kenya"]
    before = size(db)
    with HubClient(live_server, kenya.token) as hub:
        node_decline(hub, (round_one["job"], 1), "kenya", kenya.key)
    assert size(db) == before + 1


def test_unsigned_updates_are_refused_and_not_logged(
    client: TestClient, round_one: dict[str, Any], db: Session
) -> None:
    kenya, peru, job_id = round_one["kenya"], round_one["peru"], round_one["job"]
    good = DigitsLogReg().init_parameters(0)
    malformed = {"weight": good["weight"][:3], "bias": good["bias"]}
    before = size(db)
    # The edge refuses a missing signature, and a member not chosen, before the body is read.
    cases = [
        (_update(client, kenya, job_id, 1, malformed, signed=False), "request.invalid"),
        (_update(client, kenya, job_id, 1, good, signed=False), "request.invalid"),
        # signed, but by a member not chosen for the round: nobody's act here
        (_update(client, peru, job_id, 1, malformed), "federation.not_selected"),
        (_update(client, peru, job_id, 1, good), "federation.not_selected"),
    ]
    for answer, code in cases:
        assert answer.status_code in (403, 422), answer.text
        assert _code(answer) == code
    assert size(db) == before
    # A participant's signed malformed update is its act: the refusal is logged.
    signed = _update(client, kenya, job_id, 1, malformed)
    assert _code(signed) == "federation.bad_parameters"
    assert size(db) == before + 1


def test_an_amendment_of_a_withdrawn_proposal_is_not_decided(
    client: TestClient, make: Any, db: Session
) -> None:
    """Found in the audit of every logged act: closing an amendment's ballot did not look at
    the proposal, so a withdrawn proposal's amendment could still be decided and logged."""
    from tests.governance.conftest import resolution

    kenya = make.delegate("kenya", "KE")
    ref = resolution(client, kenya)
    assert client.post(f"/api/proposals/{ref}/deliberation", headers=kenya.headers).is_success
    amendment = client.post(
        f"/api/proposals/{ref}/amendments",
        json={"language": "en", "text": "The organisation requires open models."},
        headers=kenya.headers,
    ).json()["id"]
    path = f"/api/proposals/{ref}/amendments/{amendment}"
    assert client.post(f"{path}/ballot", headers=kenya.headers).is_success
    assert client.post(f"/api/proposals/{ref}/withdraw", json={}, headers=kenya.headers).is_success
    before = size(db)
    answer = client.post(f"{path}/close", headers=kenya.headers)
    assert answer.status_code == 409 and _code(answer) == "ballot.closed"
    assert size(db) == before


def test_mirroring_an_unchanged_revision_logs_nothing(
    live_server: str, client: TestClient, make: Any, tmp_path: Any
) -> None:
    """Found in the audit: every `concord mirror` logged `commons.mirrored`, even when the
    revision was there already and nothing changed."""
    from tests.commons.conftest import publish, safetensors_bytes

    from concord.commons.chunks import ChunkStore
    from concord.commons.mirror import mirror
    from concord.config import Settings
    from concord.db import make_engine, make_sessionmaker, upgrade
    from concord.members.directory import admit

    regional = Settings(data_dir=tmp_path / "regional", database_url="")
    regional.data_dir.mkdir()
    engine = make_engine(regional.database())
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    store = ChunkStore(regional.storage())
    with sessions() as tx:
        admit(tx, slug="kenya", name="Kenya", kind="country", country_code="KE")
        tx.commit()
    kenya = make.delegate("kenya", "KE")
    files = {
        "model.safetensors": safetensors_bytes(1, 32),
        "README.md": b"---\nlicense: mit\n---\n",
    }
    publish(client, kenya, "kenya", "asr", files, licence="mit")
    with sessions() as tx:
        mirror(tx, store, live_server, "kenya/asr")
        tx.commit()
        first = size(tx)
        tx.commit()
    with sessions() as tx:
        mirror(tx, store, live_server, "kenya/asr")
        tx.commit()
        assert size(tx) == first
    engine.dispose()
