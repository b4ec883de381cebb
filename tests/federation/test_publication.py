"""A finished job's model is published to the commons with provenance, or the refusal is kept."""

from __future__ import annotations

import hashlib
import json

from concord.commons import repositories
from concord.federation import jobs
from concord.federation.parameters import to_safetensors
from concord.federation.tables import Job
from concord.federation.tasks.logreg import DigitsLogReg
from concord.governance.jobspec import JobSpec
from concord.ledger.tables import LogEntry
from concord.members import keys

from .test_deployment import register


def _run_one_round(client, sessions, settings, actor, publish_as: str) -> int:
    spec = JobSpec.model_validate(
        {
            "task": "logreg-digits",
            "participants": {"members": [actor.member.slug]},
            "rounds": 1,
            "min_participants": 1,
            "publish_as": publish_as,
            "licence": "MIT",
            "privacy": {"personal_data": False},
        }
    )
    with sessions() as s:
        job_id = jobs.create_job(s, settings, spec, title="Digits for all").id
        s.commit()
    assert register(client, actor).status_code == 200
    assert client.get("/api/federation/work", headers=actor.headers).json()["round"] == 1
    body = to_safetensors(DigitsLogReg().init_parameters(3))
    sha = hashlib.sha256(body).hexdigest()
    message = jobs.update_message(job_id, 1, actor.member.slug, sha, 40)
    response = client.post(
        f"/api/federation/jobs/{job_id}/rounds/1/updates",
        content=body,
        headers={
            **actor.headers,
            "X-Concord-Examples": "40",
            "X-Concord-Signature": keys.sign(actor.key, message),
            "X-Concord-Metrics": json.dumps({"accuracy": 0.5}),
        },
    )
    assert response.status_code == 201, response.text
    return job_id


def test_final_model_is_published_with_provenance(client, make, sessions, settings, db) -> None:
    kenya = make.delegate("kenya", "KE")
    job_id = _run_one_round(client, sessions, settings, kenya, "kenya/digits-for-all")
    job = db.get(Job, job_id)
    db.refresh(job)
    assert job.status == "completed" and job.model_repo == "kenya/digits-for-all"
    repo = repositories.require(db, "model", "kenya", "digits-for-all")
    revision = repositories.head(db, repo)
    assert revision is not None and job.publication["revision"] == revision.sha
    assert set(revision.files) == {"model.safetensors", "README.md"}
    provenance = revision.provenance
    assert provenance["job"] == job_id and provenance["participants"] == ["kenya"]
    assert provenance["rounds"][0]["aggregate_sha256"] == job.digest
    assert provenance["privacy"]["personal_data"] is False
    assert revision.card["license"] == "mit"
    # The bytes served by the commons are the job's final checkpoint.
    served = client.get("/kenya/digits-for-all/resolve/main/model.safetensors")
    assert served.status_code == 200
    checkpoint = (jobs.folder(settings) / job.parameters).read_bytes()
    assert served.content == checkpoint
    page = client.get("/commons/models/kenya/digits-for-all").text
    assert "Aggregate SHA-256" in page and job.digest in page
    assert "{&#39;" not in page and "{'" not in page  # no raw Python dicts on the page
    assert "no personal data" in page  # the card's privacy line, in words
    kinds = [e.kind for e in db.query(LogEntry).order_by(LogEntry.index).all()]
    assert kinds.index("commons.published") < kinds.index("federation.job_completed")


def test_refused_publication_keeps_the_job_and_says_why(
    client, make, sessions, settings, db
) -> None:
    brazil = make.delegate("brazil", "BR")
    job_id = _run_one_round(client, sessions, settings, brazil, "nobody/digits")
    job = db.get(Job, job_id)
    db.refresh(job)
    assert job.status == "completed" and job.model_repo == ""
    assert job.publication["error"] == "commons.bad_repository"
    assert (jobs.folder(settings) / job.model_path / "model.safetensors").exists()


def test_a_quiet_node_is_not_chosen(client, make, sessions, settings, db) -> None:
    """A node silent for longer than CONCORD_NODE_TIMEOUT_S would only make rounds wait."""
    from datetime import timedelta

    from sqlalchemy import select

    from concord.db import utcnow
    from concord.federation.tables import Node, Round

    kenya, chile = make.delegate("kenya", "KE"), make.delegate("chile", "CL")
    for actor in (kenya, chile):
        assert register(client, actor).status_code == 200
    with sessions() as s:
        quiet = s.scalars(select(Node).where(Node.member_id == chile.member.id)).one()
        quiet.last_seen = utcnow() - timedelta(seconds=settings.node_timeout_s + 60)
        spec = JobSpec.model_validate(
            {
                "task": "logreg-digits",
                "participants": {"members": ["kenya", "chile"]},
                "rounds": 1,
                "min_participants": 1,
            }
        )
        job_id = jobs.create_job(s, settings, spec, title="Digits").id
        s.commit()
    assert client.get("/api/federation/work", headers=kenya.headers).json()["round"] == 1
    row = db.scalars(select(Round).where(Round.job_id == job_id)).one()
    assert row.participants == [kenya.member.id]
