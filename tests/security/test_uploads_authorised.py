"""Uploads are authorised before they are read: who sends, to which job, round and selection
is settled first, and a refused upload leaves nothing on disk. What is then read is bounded by
the job's model size and by the member's bytes in flight."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, MutableMapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from concord.federation import jobs
from concord.federation.parameters import to_safetensors
from concord.federation.tasks.logreg import DigitsLogReg
from concord.governance.jobspec import JobSpec
from concord.members import keys

FIVE_MIB = b"\0" * (5 * 1024 * 1024)


class Counting:
    """The app behind a meter: how many body bytes the app pulled from the client."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.read = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def counted() -> MutableMapping[str, Any]:
            message = await receive()
            if message.get("type") == "http.request":
                self.read += len(message.get("body", b""))
            return message

        await self.app(scope, counted, send)


@pytest.fixture
def metered(app: FastAPI) -> Iterator[tuple[TestClient, Counting]]:
    meter = Counting(app)
    with TestClient(meter) as client:  # type: ignore[arg-type]
        yield client, meter


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _job(sessions, settings, members: list[str]) -> int:
    spec = JobSpec.model_validate(
        {
            "task": "logreg-digits",
            "participants": {"members": members},
            "rounds": 2,
            "min_participants": 1,
            "clients_per_round": 1,
            "round_deadline_s": 120,
            "local": {"epochs": 1, "batch_size": 10, "learning_rate": 0.3},
        }
    )
    with sessions() as s:
        job_id = jobs.create_job(s, settings, spec, title="Digits").id
        s.commit()
    return job_id


def _register(client: TestClient, actor) -> None:
    signed_at = datetime.now(UTC).isoformat()
    message = jobs.registration_message(actor.member.slug, ["logreg-digits"], signed_at)
    answer = client.post(
        "/api/federation/nodes",
        json={
            "tasks": ["logreg-digits"],
            "signed_at": signed_at,
            "signature": keys.sign(actor.key, message),
        },
        headers=actor.headers,
    )
    assert answer.status_code == 200, answer.text


def _headers(actor, job_id: int, body: bytes) -> dict[str, str]:
    signer = actor.key if actor.key is not None else keys.generate()
    slug = actor.member.slug if actor.member is not None else "nobody"
    sha = hashlib.sha256(body).hexdigest()
    message = jobs.update_message(job_id, 1, slug, sha, 10)
    return {
        **actor.headers,
        "X-Concord-Examples": "10",
        "X-Concord-Signature": keys.sign(signer, message),
    }


def test_an_observers_update_is_refused_unread(metered, make, sessions, settings) -> None:
    # Prepare
    client, meter = metered
    make.delegate("kenya", "KE")
    observer = make.observer()
    job_id = _job(sessions, settings, ["kenya"])
    before = _files(settings.data_dir)
    meter.read = 0

    # Execute
    answer = client.post(
        f"/api/federation/jobs/{job_id}/rounds/1/updates",
        content=FIVE_MIB,
        headers=_headers(observer, job_id, FIVE_MIB),
    )

    # Assert
    assert answer.status_code == 403, answer.text[:300]
    assert meter.read == 0
    assert _files(settings.data_dir) == before


def test_an_update_for_no_job_creates_no_folder(metered, make, settings) -> None:
    # Prepare
    client, meter = metered
    kenya = make.delegate("kenya", "KE")
    before = _files(settings.data_dir)
    meter.read = 0

    # Execute
    answer = client.post(
        "/api/federation/jobs/987654/rounds/1/updates",
        content=FIVE_MIB,
        headers=_headers(kenya, 987654, FIVE_MIB),
    )

    # Assert
    assert answer.status_code == 404, answer.text[:300]
    assert answer.json()["error"]["code"] == "federation.unknown_job"
    assert meter.read == 0
    assert _files(settings.data_dir) == before
    assert not any("987654" in name for name in _files(settings.data_dir))


def test_a_member_not_selected_is_refused_before_any_byte(
    metered, make, sessions, settings
) -> None:
    # Prepare: kenya's node is the only one chosen; peru is not a participant at all
    client, meter = metered
    kenya, peru = make.delegate("kenya", "KE"), make.delegate("peru", "PE")
    job_id = _job(sessions, settings, ["kenya"])
    for actor in (kenya, peru):
        _register(client, actor)
    assert client.get("/api/federation/work", headers=kenya.headers).status_code == 200
    before = _files(settings.data_dir)
    meter.read = 0

    # Execute
    answer = client.post(
        f"/api/federation/jobs/{job_id}/rounds/1/updates",
        content=FIVE_MIB,
        headers=_headers(peru, job_id, FIVE_MIB),
    )

    # Assert
    assert answer.status_code == 403, answer.text[:300]
    assert answer.json()["error"]["code"] == "federation.not_selected"
    assert meter.read == 0
    assert _files(settings.data_dir) == before


def test_an_update_larger_than_the_model_is_refused(metered, make, sessions, settings) -> None:
    # Prepare
    client, _meter = metered
    kenya = make.delegate("kenya", "KE")
    job_id = _job(sessions, settings, ["kenya"])
    _register(client, kenya)
    assert client.get("/api/federation/work", headers=kenya.headers).status_code == 200
    model = to_safetensors(DigitsLogReg().init_parameters(0))
    body = model + FIVE_MIB  # far beyond the model's size and the header's slack

    # Execute
    answer = client.post(
        f"/api/federation/jobs/{job_id}/rounds/1/updates",
        content=body,
        headers=_headers(kenya, job_id, body),
    )

    # Assert
    assert answer.status_code == 413, answer.text[:300]
    assert answer.json()["error"]["code"] == "request.too_large"
    assert not list((settings.data_dir).rglob(".up-*"))


def test_a_member_over_its_upload_quota_gets_429(metered, make, sessions, settings) -> None:
    # Prepare
    from concord import inflight

    client, _meter = metered
    kenya = make.delegate("kenya", "KE")
    job_id = _job(sessions, settings, ["kenya"])
    _register(client, kenya)
    assert client.get("/api/federation/work", headers=kenya.headers).status_code == 200
    settings.member_upload_bytes = 1000  # the app reads its settings at each request
    body = to_safetensors(DigitsLogReg().init_parameters(0))

    # Execute
    update = client.post(
        f"/api/federation/jobs/{job_id}/rounds/1/updates",
        content=body,
        headers=_headers(kenya, job_id, body),
    )
    upload = client.post(
        "/api/commons/uploads?filename=weights.bin", content=FIVE_MIB, headers=kenya.headers
    )

    # Assert
    for answer in (update, upload):
        assert answer.status_code == 429, answer.text[:300]
        assert answer.json()["error"]["code"] == "request.upload_quota"
    assert inflight.held(kenya.member.id) == 0  # given back when the request ended
