"""Evaluation campaigns at the hub: the matrix's aggregates, opening a campaign through the API
(and its refusals), nodes' signed answers, CSV/JSON, and the campaign a finished job opens."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from concord.commons import repositories as repos
from concord.commons.chunks import open_store
from concord.federation import evaluation, jobs
from concord.federation.evaluation import Cell
from concord.federation.parameters import to_safetensors
from concord.federation.tables import Job
from concord.federation.tasks.base import TaskData
from concord.federation.tasks.logreg import DigitsLogReg
from concord.governance.jobspec import JobSpec
from concord.ledger.tables import LogEntry
from concord.members import keys
from concord.members.tables import Member

# --- aggregates, from cells alone


def _cell(member: str, region: str, income: str, bloc: str, accuracy: float, n: int) -> Cell:
    return Cell(member, member.title(), region, income, bloc, {"accuracy": accuracy}, n)


def test_the_summary_names_the_worst_member_and_groups_by_region_income_and_bloc() -> None:
    # Prepare: four members; the worst is a low-income African member with few examples.
    cells = [
        _cell("kenya", "Africa", "lower-middle", "south", 0.70, 100),
        _cell("chad", "Africa", "low", "south", 0.50, 50),
        _cell("brazil", "Americas", "upper-middle", "south", 0.80, 300),
        _cell("norway", "Europe", "high", "north", 0.96, 550),
    ]

    # Execute
    s = evaluation.summarise("o/m", "a" * 40, "accuracy", 0.75, cells, ["peru"], ["fiji"])

    # Assert
    assert s.mean == pytest.approx((0.70 + 0.50 + 0.80 + 0.96) / 4)  # one member, one voice
    assert s.weighted_mean == pytest.approx((70 + 25 + 240 + 528) / 1000)
    assert (s.worst_member, s.worst) == ("chad", 0.50)
    assert s.spread == pytest.approx(0.46)
    assert s.by_region == pytest.approx({"Africa": 0.60, "Americas": 0.80, "Europe": 0.96})
    assert s.by_income == pytest.approx(
        {"high": 0.96, "low": 0.50, "lower-middle": 0.70, "upper-middle": 0.80}
    )
    assert s.by_bloc == pytest.approx({"north": 0.96, "south": (0.70 + 0.50 + 0.80) / 3})
    assert s.pass_share == pytest.approx(0.5)  # brazil and norway reach 0.75
    assert [c.member for c in s.cells] == ["brazil", "chad", "kenya", "norway"]
    assert (s.declined, s.pending) == (["peru"], ["fiji"])


def test_a_summary_without_results_or_threshold_has_no_figures() -> None:
    # Prepare: one cell lacks the metric (its task reports another one).
    cells = [Cell("kenya", "Kenya", "Africa", "lower-middle", "south", {"loss": 0.3}, 10)]

    # Execute
    s = evaluation.summarise("o/m", "a" * 40, "accuracy", None, cells)

    # Assert
    assert (s.mean, s.weighted_mean, s.worst_member, s.worst, s.spread) == (
        None,
        None,
        None,
        None,
        None,
    )
    assert s.pass_share is None and s.by_region == {} and len(s.cells) == 1


# --- the hub: models in the commons, nodes, campaigns


def _trained(seed: int = 0, epochs: int = 3) -> dict[str, np.ndarray]:
    task = DigitsLogReg()
    x, y, _xt, _yt = task.split()
    params = task.init_parameters(seed)
    if epochs:
        params = task.train(params, TaskData(x, y), {"epochs": epochs}).parameters
    return params


def publish(sessions, settings, owner: str, name: str, params: dict[str, Any], tmp: Path) -> str:
    """Publishes `params` as owner/name in the commons; its commit."""
    source = tmp / f"{owner}-{name}.safetensors"
    source.write_bytes(to_safetensors(params))
    with sessions() as s:
        member = s.scalars(select(Member).where(Member.slug == owner)).one()
        revision = repos.publish_model(
            s,
            open_store(settings),
            member,
            name,
            {"model.safetensors": source},
            licence="mit",
            card_text="",
            provenance={},
        )
        s.commit()
        return revision.sha


def register_node(client, actor, tasks=("logreg-digits",)) -> None:
    from datetime import UTC, datetime

    when = datetime.now(UTC).isoformat()
    message = jobs.registration_message(actor.member.slug, list(tasks), when)
    response = client.post(
        "/api/federation/nodes",
        json={"tasks": list(tasks), "signed_at": when, "signature": keys.sign(actor.key, message)},
        headers=actor.headers,
    )
    assert response.status_code == 200, response.text


def _open(client, actor, **extra: Any):
    body = {
        "title": "Does it read our digits?",
        "task": "logreg-digits",
        "models": [{"repo": "kenya/digits", "revision": "main"}],
        "metric": "accuracy",
        "threshold": 0.9,
        **extra,
    }
    return client.post("/api/campaigns", json=body, headers=actor.headers)


def _results(actor, campaign: int, results: list[dict[str, Any]], key=None) -> dict[str, Any]:
    payload = evaluation.result_payload(campaign, actor.member.slug, results)
    return {
        "payload": payload,
        "signature": keys.sign(key or actor.key, evaluation.result_message(payload)),
    }


def _answer(actor, campaign: int, status: str, reason: str = "site policy") -> dict[str, Any]:
    message = evaluation.answer_message(campaign, actor.member.slug, status, reason)
    return {"signature": keys.sign(actor.key, message), "reason": reason}


@pytest.fixture
def hub(client, make, sessions, settings, tmp_path):
    """Kenya, Brazil and Norway with nodes; Kenya's model `kenya/digits` in the commons."""
    actors = {
        slug: make.delegate(slug, code)
        for slug, code in [("kenya", "KE"), ("brazil", "BR"), ("norway", "NO")]
    }
    for actor in actors.values():
        register_node(client, actor)
    sha = publish(sessions, settings, "kenya", "digits", _trained(epochs=0), tmp_path)
    return actors, sha


def test_nodes_answer_a_campaign_and_the_matrix_shows_it_by_member(client, hub, db) -> None:
    # Prepare: brazil opens a campaign of kenya's model with a threshold of 0.9.
    actors, sha = hub
    opened = _open(client, actors["brazil"])
    assert opened.status_code == 201, opened.text
    campaign = opened.json()["campaign_id"]
    model = {"repo": "kenya/digits", "revision": sha}

    # Execute: the nodes get the work through the long poll and answer three ways.
    work = client.get("/api/federation/work", headers=actors["kenya"].headers).json()
    kenya = client.post(
        f"/api/campaigns/{campaign}/results",
        json=_results(
            actors["kenya"],
            campaign,
            [{**model, "metrics": {"accuracy": 0.95, "loss": 0.2}, "num_examples": 120}],
        ),
        headers=actors["kenya"].headers,
    )
    brazil = client.post(
        f"/api/campaigns/{campaign}/results",
        json=_results(
            actors["brazil"],
            campaign,
            [{**model, "metrics": {"accuracy": 0.85}, "num_examples": 40}],
        ),
        headers=actors["brazil"].headers,
    )
    norway = client.post(
        f"/api/campaigns/{campaign}/decline",
        json=_answer(actors["norway"], campaign, "declined"),
        headers=actors["norway"].headers,
    )
    after = client.get("/api/federation/work", headers=actors["kenya"].headers)

    # Assert
    assert work["kind"] == "evaluation" and work["campaign"] == campaign
    assert work["models"] == [model] and work["evaluation_set"] == "test"
    assert (kenya.status_code, brazil.status_code, norway.status_code) == (201, 201, 200)
    assert after.status_code == 204  # answered: no more work
    matrix = client.get(f"/api/campaigns/{campaign}").json()
    row = matrix["models"][0]
    assert (row["repo"], row["revision"], row["metric"]) == ("kenya/digits", sha, "accuracy")
    assert [c["member"] for c in row["cells"]] == ["brazil", "kenya"]
    assert (row["worst_member"], row["worst"]) == ("brazil", 0.85)
    assert row["mean"] == pytest.approx(0.90)
    assert row["weighted_mean"] == pytest.approx((0.95 * 120 + 0.85 * 40) / 160)
    assert row["spread"] == pytest.approx(0.10)
    assert row["by_region"] == pytest.approx({"Africa": 0.95, "Americas": 0.85})
    assert row["by_bloc"] == pytest.approx({"south": 0.90})
    assert row["pass_share"] == 0.5
    assert (row["declined"], row["pending"]) == (["norway"], [])
    text = client.get(f"/api/campaigns/{campaign}/matrix.csv")
    assert text.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(text.text)))
    assert [(r["member"], r["status"], r["accuracy"]) for r in rows] == [
        ("brazil", "result", "0.85"),
        ("kenya", "result", "0.95"),
        ("norway", "declined", ""),
    ]
    assert rows[1]["loss"] == "0.2" and rows[1]["income_group"] == "lower-middle"
    kinds = [e.kind for e in db.scalars(select(LogEntry).order_by(LogEntry.index)).all()]
    assert kinds.count("federation.campaign_opened") == 1
    assert kinds.count("federation.campaign_result") == 2
    assert kinds.count("federation.campaign_declined") == 1
    closed = client.post(f"/api/campaigns/{campaign}/close", headers=actors["brazil"].headers)
    assert closed.json()["status"] == "closed"
    assert db.scalars(select(LogEntry).where(LogEntry.kind == "federation.campaign_closed")).one()


def test_held_results_show_as_pending_until_released(client, hub) -> None:
    # Prepare
    actors, sha = hub
    campaign = _open(client, actors["kenya"]).json()["campaign_id"]
    brazil = actors["brazil"]

    # Execute: brazil's node says it holds its results, then its operator releases them.
    client.post(
        f"/api/campaigns/{campaign}/held",
        json=_answer(brazil, campaign, "held", ""),
        headers=brazil.headers,
    )
    waiting = client.get(f"/api/campaigns/{campaign}").json()["models"][0]
    no_work = client.get("/api/federation/work", headers=brazil.headers)
    released = client.post(
        f"/api/campaigns/{campaign}/results",
        json=_results(
            brazil,
            campaign,
            [
                {
                    "repo": "kenya/digits",
                    "revision": sha,
                    "metrics": {"accuracy": 0.5},
                    "num_examples": 9,
                }
            ],
        ),
        headers=brazil.headers,
    )
    after = client.get(f"/api/campaigns/{campaign}").json()["models"][0]

    # Assert
    assert waiting["held"] == ["brazil"] and "brazil" in waiting["pending"]
    assert no_work.status_code == 204
    assert released.status_code == 201
    assert after["held"] == [] and "brazil" not in after["pending"]
    assert [c["member"] for c in after["cells"]] == ["brazil"]


def test_opening_a_campaign_is_checked(client, hub, make, sessions) -> None:
    # Prepare: brazil keeps a private model; an observer has no member.
    actors, _sha = hub
    with sessions() as s:
        brazil = s.scalars(select(Member).where(Member.slug == "brazil")).one()
        repo = repos.create(s, brazil, kind="model", name="secret", licence="mit")
        repos.set_private(s, repo, True, by=brazil)
        s.commit()
    observer = make.observer()
    kenya = actors["kenya"]
    cases = [
        ({"models": [{"repo": "kenya/nothing"}]}, 404, "commons.unknown_repository"),
        ({"models": [{"repo": "brazil/secret"}]}, 404, "commons.unknown_repository"),
        ({"models": [{"repo": "kenya/digits", "revision": "v9"}]}, 404, "commons.unknown_revision"),
        ({"models": []}, 422, "federation.bad_campaign"),
        ({"task": ""}, 422, "federation.bad_campaign"),
        ({"metric": "Accuracy!"}, 422, "federation.bad_campaign"),
        ({"evaluation_set": "../etc"}, 422, "federation.bad_campaign"),
        ({"proposal_id": 77}, 409, "federation.campaign_proposal"),
    ]

    # Execute / Assert
    for extra, status, code in cases:
        response = _open(client, kenya, **extra)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), extra
    assert _open(client, observer).status_code == 403
    assert client.post("/api/campaigns", json={}).status_code in (401, 422)
    assert client.get("/api/campaigns").json() == []  # nothing was opened


def test_answers_are_checked(client, hub, make) -> None:
    # Prepare: a campaign; chile has a node without the task, so it is not asked.
    actors, sha = hub
    kenya, brazil, norway = actors["kenya"], actors["brazil"], actors["norway"]
    chile = make.delegate("chile", "CL")
    register_node(client, chile, tasks=("mnist-cnn",))
    campaign = _open(client, brazil).json()["campaign_id"]
    good = [
        {"repo": "kenya/digits", "revision": sha, "metrics": {"accuracy": 0.9}, "num_examples": 10}
    ]

    def post(actor, body, what="results"):
        answer = client.post(f"/api/campaigns/{campaign}/{what}", json=body, headers=actor.headers)
        return answer.status_code, answer.json().get("error", {}).get("code")

    # Execute / Assert
    assert post(kenya, _results(kenya, campaign, good, key=brazil.key)) == (
        422,
        "signature.invalid",
    )
    assert post(kenya, _results(kenya, campaign, [])) == (422, "federation.bad_evaluation")
    assert post(kenya, _results(kenya, campaign, [{**good[0], "revision": "b" * 40}])) == (
        422,
        "federation.bad_evaluation",
    )
    assert post(kenya, _results(kenya, campaign, [{**good[0], "metrics": {"accuracy": "x"}}])) == (
        422,
        "federation.bad_evaluation",
    )
    assert post(kenya, _results(kenya, campaign, [{**good[0], "num_examples": 0}])) == (
        422,
        "federation.bad_evaluation",
    )
    assert post(chile, _results(chile, campaign, good)) == (403, "federation.campaign_not_asked")
    assert post(norway, {"reason": "x"}, "decline") == (422, "federation.campaign_answer_unsigned")
    assert post(norway, _answer(norway, campaign, "declined"), "decline") == (200, None)
    assert post(norway, _results(norway, campaign, good)) == (409, "federation.campaign_answered")
    first = _results(kenya, campaign, good)
    assert post(kenya, first) == (201, None)
    assert post(kenya, first) == (201, None)  # a resend after a lost answer: taken once
    assert post(kenya, _results(kenya, campaign, [{**good[0], "num_examples": 11}])) == (
        409,
        "federation.campaign_answered",
    )
    assert client.post(f"/api/campaigns/{campaign}/close", headers=kenya.headers).status_code == 403
    assert (
        client.post(f"/api/campaigns/{campaign}/close", headers=brazil.headers).status_code == 200
    )
    assert post(brazil, _results(brazil, campaign, good)) == (409, "federation.campaign_closed")
    assert client.get("/api/campaigns/999").json()["error"]["code"] == "federation.campaign_unknown"
    matrix = client.get(f"/api/campaigns/{campaign}").json()["models"][0]
    assert [c["member"] for c in matrix["cells"]] == ["kenya"]
    assert (matrix["declined"], matrix["pending"]) == (["norway"], ["brazil"])


def test_latest_for_model_finds_the_newest_campaign(client, hub, db) -> None:
    # Prepare
    actors, _sha = hub
    first = _open(client, actors["kenya"], title="First").json()["campaign_id"]
    second = _open(client, actors["brazil"], title="Second").json()["campaign_id"]

    # Execute
    latest = evaluation.latest_for_model(db, "kenya/digits")
    none = evaluation.latest_for_model(db, "kenya/other")

    # Assert
    assert second > first
    assert latest is not None and (latest.campaign_id, latest.title) == (second, "Second")
    assert none is None
    assert evaluation.matrix_json(latest)["models"][0]["repo"] == "kenya/digits"


def test_a_finished_job_opens_a_campaign_of_its_final_model(make, sessions, settings, db) -> None:
    # Prepare: a one-round job of kenya and brazil that publishes its model as kenya/final.
    for slug, code in [("kenya", "KE"), ("brazil", "BR")]:
        make.delegate(slug, code)
    spec = JobSpec.model_validate(
        {
            "task": "logreg-digits",
            "participants": {"members": ["kenya", "brazil"]},
            "rounds": 1,
            "min_participants": 1,
            "publish_as": "kenya/final",
            "licence": "mit",
        }
    )
    with sessions() as s:
        job = jobs.create_job(s, settings, spec, title="Digits")
        s.commit()
        job_id = job.id
        kenya = s.scalars(select(Member).where(Member.slug == "kenya")).one()
        from concord.federation.tables import Round

        # The round closes with kenya's update only (brazil's node never came).
        job = s.get(Job, job_id)
        s.add(
            Round(
                job_id=job_id,
                number=1,
                participants=[kenya.id],
                parameters=job.parameters,
                deadline=job.created_at,
                opened_at=job.created_at,
                status="closed",
                metrics={"accuracy": 0.5},
            )
        )
        job.rounds_done = 1
        s.flush()

        # Execute: the job finishes (what `advance` does after the last round).
        jobs._finish(s, settings, job)
        s.commit()

    # Assert
    job = db.get(Job, job_id)
    db.refresh(job)
    campaign = evaluation.campaign_for_job(db, job_id)
    assert job.status == "completed" and job.model_repo == "kenya/final"
    assert campaign is not None
    m = evaluation.matrix(db, campaign)
    assert m.title == f"Final model of job {job_id}" and m.job_id == job_id
    assert [(s.repo, s.revision) for s in m.models] == [
        ("kenya/final", job.publication["revision"])
    ]
    assert m.models[0].pending == ["kenya"]  # the job's participants, not every node
    assert evaluation.campaign_for_job(db, job_id + 1) is None
