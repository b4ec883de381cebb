"""Hostile input at the edge: ids too large for any column, years from another age, JSON that
is not UTF-8 or nests 100,000 deep, headers that carry `null` or `inf`. Each gets a coded
400/422, never a 500 nor a misleading 404; and a job poisoned before the edge refused `inf`
still closes its round."""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from concord.federation import jobs
from concord.federation.parameters import to_safetensors
from concord.federation.tables import Job, Update
from concord.federation.tasks.logreg import DigitsLogReg
from concord.governance.jobspec import JobSpec
from concord.members import keys

HUGE = "9" * 30  # beyond any 64-bit column
NODE_TASKS = ["logreg-digits"]


def _spec(members: list[str]) -> JobSpec:
    return JobSpec.model_validate(
        {
            "task": "logreg-digits",
            "participants": {"members": members},
            "rounds": 2,
            "min_participants": len(members),
            "round_deadline_s": 120,
            "local": {"epochs": 1, "batch_size": 10, "learning_rate": 0.3},
        }
    )


def _register(client, actor) -> None:
    signed_at = datetime.now(UTC).isoformat()
    message = jobs.registration_message(actor.member.slug, NODE_TASKS, signed_at)
    answer = client.post(
        "/api/federation/nodes",
        json={
            "tasks": NODE_TASKS,
            "signed_at": signed_at,
            "signature": keys.sign(actor.key, message),
        },
        headers=actor.headers,
    )
    assert answer.status_code == 200, answer.text


def _update(actor, job_id: int, number: int, **headers: str) -> tuple[bytes, dict[str, str]]:
    body = to_safetensors(DigitsLogReg().init_parameters(0))
    sha = hashlib.sha256(body).hexdigest()
    message = jobs.update_message(job_id, number, actor.member.slug, sha, 10)
    return body, {
        **actor.headers,
        "X-Concord-Examples": "10",
        "X-Concord-Signature": keys.sign(actor.key, message),
        **headers,
    }


@pytest.mark.parametrize(
    "path",
    [
        f"/api/log/entries/{HUGE}",
        f"/api/federation/jobs/{HUGE}",
        f"/api/federation/jobs/1/rounds/{HUGE}/parameters",
        f"/api/federation/jobs/{HUGE}/rounds/1/parameters",
        f"/api/programmes/{HUGE}",
        f"/api/programmes/{HUGE}/calendar.ics",
        f"/api/completions/{HUGE}",
        f"/api/log/heads?before={10**20}",
        f"/api/log/entries?start={10**20}",
        f"/api/log/proof/inclusion?index={10**20}&size=1",
        f"/api/log/proof/consistency?first=1&second={10**20}",
        "/api/impact?year=99999",
        "/api/impact/participation?year=99999",
        "/api/impact/participation.csv?year=99999",
        f"/log?before={10**20}",
        f"/log?entry={10**20}",
        f"/jobs/{HUGE}",
        f"/programmes/{HUGE}",
        "/impact?year=99999",
        "/impact/report/-5",
        "/impact/report/99999",
    ],
)
def test_out_of_range_numbers_are_refused_with_a_code(client, path) -> None:
    # Execute
    answer = client.get(path)

    # Assert
    assert answer.status_code == 422, (path, answer.status_code, answer.text[:200])
    assert answer.json()["error"]["code"] == "request.invalid"


def test_huge_ids_in_authenticated_writes_are_refused(client, make) -> None:
    # Prepare
    delegate = make.delegate("kenya", "KE")
    writes = [
        ("delete", f"/api/tokens/{HUGE}"),
        ("post", f"/api/enrolments/{HUGE}/completion"),
        ("delete", f"/api/enrolments/{HUGE}"),
        ("post", f"/api/federation/jobs/{HUGE}/rounds/1/decline"),
    ]

    # Execute
    answers = [client.request(method, path, headers=delegate.headers) for method, path in writes]

    # Assert
    for (_method, path), answer in zip(writes, answers, strict=True):
        assert answer.status_code == 422, (path, answer.text[:200])
        assert answer.json()["error"]["code"] == "request.invalid"


@pytest.mark.parametrize(
    "body",
    [
        b"\xff\xfe{not utf-8}",
        b"[" * 100_000 + b"]" * 100_000,
        b'{"owner": "kenya", "name": ' + b"[" * 100 + b"]" * 100 + b', "licence": "mit"}',
        b"{not json",
    ],
    ids=["not-utf8", "100k-deep", "100-deep", "not-json"],
)
def test_malformed_json_bodies_get_400(client, make, body) -> None:
    # Prepare
    delegate = make.delegate("kenya", "KE")

    # Execute
    answer = client.post(
        "/api/commons/repos",
        content=body,
        headers={**delegate.headers, "Content-Type": "application/json"},
    )

    # Assert
    assert answer.status_code == 400, answer.text[:200]
    assert answer.json()["error"]["code"] == "request.malformed_json"


def test_non_finite_numbers_in_a_json_body_are_refused(client, make) -> None:
    # Prepare: Python's JSON reader takes NaN and Infinity, which no log entry can hold
    delegate = make.delegate("kenya", "KE")
    body = (
        b'{"member": "kenya", "side": "offer", "kind": "compute", "title": "GPUs", '
        b'"quantity": Infinity, "timezone": "Africa/Nairobi"}'
    )

    # Execute
    answer = client.post(
        "/api/exchange",
        content=body,
        headers={**delegate.headers, "Content-Type": "application/json"},
    )

    # Assert
    assert answer.status_code == 422, answer.text[:200]
    assert answer.json()["error"]["code"] == "request.not_finite"


@pytest.mark.parametrize("wait", ["inf", "nan", "1e400", "-1"])
def test_a_long_poll_wait_must_be_a_finite_duration(client, make, wait) -> None:
    # Prepare
    delegate = make.delegate("kenya", "KE")

    # Execute
    answer = client.get(f"/api/federation/work?wait={wait}", headers=delegate.headers)

    # Assert
    assert answer.status_code == 422, answer.text[:200]


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({"X-Concord-Metrics": "null"}, "request.malformed_header"),
        ({"X-Concord-Metrics": "[1, 2]"}, "request.malformed_header"),
        ({"X-Concord-Metrics": '{"a": {"b": 1}}'}, "request.malformed_header"),
        ({"X-Concord-Metrics": '{"a": null}'}, "request.malformed_header"),
        ({"X-Concord-Metrics": '{"a": NaN}'}, "request.malformed_header"),
        ({"X-Concord-Metrics": '{"a": 1e999}'}, "request.malformed_header"),
        ({"X-Concord-Metrics": "[" * 1000 + "]" * 1000}, "request.malformed_header"),
        ({"X-Concord-Energy-kWh": "inf"}, "request.invalid"),
        ({"X-Concord-Emissions-kg": "nan"}, "request.invalid"),
        ({"X-Concord-Examples": HUGE}, "request.invalid"),
    ],
    ids=[
        "null",
        "list",
        "nested",
        "null-value",
        "nan",
        "overflow",
        "deep",
        "energy-inf",
        "emissions-nan",
        "examples-huge",
    ],
)
def test_update_headers_are_validated_before_anything_is_stored(
    client, make, sessions, settings, db, headers, code
) -> None:
    # Prepare
    kenya = make.delegate("kenya", "KE")
    with sessions() as s:
        job_id = jobs.create_job(s, settings, _spec(["kenya"]), title="Digits").id
        s.commit()
    _register(client, kenya)
    assert client.get("/api/federation/work", headers=kenya.headers).status_code == 200
    body, sent = _update(kenya, job_id, 1, **headers)

    # Execute
    answer = client.post(
        f"/api/federation/jobs/{job_id}/rounds/1/updates", content=body, headers=sent
    )

    # Assert
    assert answer.status_code in (400, 422), answer.text[:300]
    assert answer.json()["error"]["code"] == code
    assert db.scalars(select(Update)).all() == []


def test_a_round_with_a_stored_infinite_figure_still_closes(
    client, make, sessions, settings, db
) -> None:
    """A job poisoned before the edge refused `inf`: the round must close, not stop forever."""
    # Prepare: one member's update is in, with an infinite energy and metric stored directly
    kenya, brazil = make.delegate("kenya", "KE"), make.delegate("brazil", "BR")
    with sessions() as s:
        job_id = jobs.create_job(s, settings, _spec(["kenya", "brazil"]), title="Digits").id
        s.commit()
    for actor in (kenya, brazil):
        _register(client, actor)
    for actor in (kenya, brazil):
        assert client.get("/api/federation/work", headers=actor.headers).status_code == 200
    body, sent = _update(kenya, job_id, 1)
    assert (
        client.post(
            f"/api/federation/jobs/{job_id}/rounds/1/updates", content=body, headers=sent
        ).status_code
        == 201
    )
    with sessions() as s:
        stored = s.scalars(select(Update)).one()
        stored.energy_kwh = math.inf  # (PostgreSQL's JSON could not even hold an inf metric)
        s.commit()
    body, sent = _update(brazil, job_id, 1)

    # Execute: the second update closes the round
    answer = client.post(
        f"/api/federation/jobs/{job_id}/rounds/1/updates", content=body, headers=sent
    )
    work = client.get("/api/federation/work", headers=kenya.headers)

    # Assert
    assert answer.status_code == 201, answer.text[:300]
    assert work.status_code == 200, work.text[:300]
    assert work.json()["round"] == 2
    job = db.get(Job, job_id)
    assert job is not None and job.rounds_done == 1
    entries = client.get("/api/log/entries?start=0").json()
    rounds = [json.loads(e["body"]) for e in entries if e["kind"] == "federation.round"]
    assert len(rounds) == 1 and math.isfinite(rounds[0]["content"]["energy_kwh"])
