"""Per-member accuracy during training (#16): in a round due for evaluation, a node whose site
allows it evaluates the model it received on its own test data before training and sends the
metrics signed with its update; the job page shows them by round and member."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import select

from concord.federation import data, jobs
from concord.federation.node import SitePolicy, run_node
from concord.federation.parameters import to_safetensors
from concord.federation.tables import Round, Update
from concord.federation.tasks.logreg import DigitsLogReg
from concord.governance.jobspec import JobSpec
from concord.members import keys
from concord.members.keys import verify

from .test_deployment import register

EVALUATES = SitePolicy(evaluate={"logreg-digits"})


def _train(server: str, actors: dict[str, Any], policies: dict[str, SitePolicy], root: Path):
    """Runs one real node per member (threads, in this process) until the hub has no more work
    for them; each site has its share of the digits for training and for testing."""
    x, y, xt, yt = DigitsLogReg().split()
    parts = data.iid(len(x), len(actors), seed=3)
    tests = data.iid(len(xt), len(actors), seed=4)
    errors: list[BaseException] = []

    def node(slug: str, part: Any, test: Any) -> None:
        site = root / slug
        data.write_partition(site, x[part], y[part], xt[test], yt[test])
        keys.save_private(actors[slug].key, site / "key.pem")
        try:
            run_node(
                server,
                slug,
                site,
                actors[slug].token,
                site / "key.pem",
                policy=policies[slug],
                energy=False,
                wait=1.0,
                idle_exit=2.0,
            )
        except BaseException as exc:  # surfaced in the test thread below
            errors.append(exc)

    threads = [
        threading.Thread(target=node, args=(slug, part, test), daemon=True)
        for slug, part, test in zip(actors, parts, tests, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    assert not errors, errors
    return {slug: len(test) for slug, test in zip(actors, tests, strict=True)}


def _spec(members: list[str], **extra: Any) -> JobSpec:
    return JobSpec.model_validate(
        {
            "task": "logreg-digits",
            "participants": {"members": members},
            "rounds": 3,
            "min_participants": len(members),
            "round_deadline_s": 120,
            "local": {"epochs": 2, "batch_size": 10, "learning_rate": 0.3},
            **extra,
        }
    )


def test_nodes_that_opt_in_send_signed_accuracy_every_evaluate_every_rounds(
    live_server, client, make, sessions, settings, db, tmp_path
) -> None:
    # Prepare: kenya's site evaluates the task, peru's does not; rounds 2 and 3 are due
    # (every 2 rounds, and the last).
    actors = {slug: make.delegate(slug, code) for slug, code in [("kenya", "KE"), ("peru", "PE")]}
    with sessions() as s:
        job_id = jobs.create_job(
            s, settings, _spec(list(actors), evaluate_every=2), title="Digits"
        ).id
        s.commit()
    policies = {"kenya": EVALUATES, "peru": SitePolicy()}
    # Execute
    test_sizes = _train(live_server, actors, policies, tmp_path / "sites")
    # Assert: kenya's updates of rounds 2 and 3 carry its evaluation, round 1's none; peru's
    # never; the signature covers the evaluation.
    kenya, peru = actors["kenya"].member, actors["peru"].member
    updates = db.execute(
        select(Round.number, Update)
        .join(Round, Round.id == Update.round_id)
        .where(Round.job_id == job_id)
        .order_by(Round.number)
    ).all()
    sent = {(n, u.member_id): u for n, u in updates}
    assert sorted(n for n, _m in sent) == [1, 1, 2, 2, 3, 3]
    assert sent[(1, kenya.id)].evaluation is None
    assert all(sent[(n, peru.id)].evaluation is None for n in (1, 2, 3))
    for number in (2, 3):
        update = sent[(number, kenya.id)]
        evaluation = update.evaluation
        assert evaluation is not None
        assert evaluation["num_examples"] == test_sizes["kenya"]
        assert 0.0 <= evaluation["accuracy"] <= 1.0 and evaluation["loss"] > 0
        message = jobs.update_message(
            job_id, number, "kenya", update.sha256, update.examples, evaluation
        )
        verify(db, kenya, message, update.signature)  # raises if not covered
    # The model received in round 3 is better than the one received in round 2.
    assert sent[(3, kenya.id)].evaluation["accuracy"] > 0.8
    # The job page: a round × member table with the worst member and the spread.
    page = client.get(f"/jobs/{job_id}").text
    section = page.split('id="during-training"')[1].split("</table>")[0]
    assert "kenya" in section and "peru" not in section
    rows = re.findall(r"<tr><th scope=\"row\">(\d+)</th>", section)
    assert rows == ["2", "3"]
    accuracy = sent[(3, kenya.id)].evaluation["accuracy"]
    assert f"{accuracy:.3f} (kenya)" in section


def test_the_job_page_shows_worst_member_and_spread_per_round(
    client, make, sessions, settings, db
) -> None:
    # Prepare: a two-round job, evaluated every round; two members send an evaluation.
    kenya, peru = make.delegate("kenya", "KE"), make.delegate("peru", "PE")
    spec = _spec(["kenya", "peru"], rounds=2, evaluate_every=1)
    with sessions() as s:
        job_id = jobs.create_job(s, settings, spec, title="Digits").id
        s.commit()
    for actor in (kenya, peru):
        assert register(client, actor).status_code == 200
    for actor, accuracy in ((kenya, 0.9), (peru, 0.6)):
        work = client.get("/api/federation/work", headers=actor.headers).json()
        assert work["evaluate"] is True
        answer = _send(
            client, job_id, actor, {"accuracy": accuracy, "loss": 0.5, "num_examples": 30}
        )
        assert answer.status_code == 201, answer.text
    # Execute
    page = client.get(f"/jobs/{job_id}").text
    # Assert
    section = page.split('id="during-training"')[1].split("</table>")[0]
    assert "0.900" in section and "0.600" in section
    assert "0.600 (peru)" in section  # worst member
    assert "0.300" in section  # spread: best minus worst


def _send(client, job_id: int, actor: Any, evaluation: dict[str, Any], *, signed=None):
    """Sends an update for round 1 with `evaluation` in its header, signed over `signed`
    (default: the evaluation sent)."""
    body = to_safetensors(DigitsLogReg().init_parameters(3))
    sha = hashlib.sha256(body).hexdigest()
    covered = evaluation if signed is None else signed
    message = jobs.update_message(job_id, 1, actor.member.slug, sha, 40, covered)
    return client.post(
        f"/api/federation/jobs/{job_id}/rounds/1/updates",
        content=body,
        headers={
            **actor.headers,
            "X-Concord-Examples": "40",
            "X-Concord-Signature": keys.sign(actor.key, message),
            "X-Concord-Evaluation": json.dumps(evaluation),
        },
    )


def test_an_evaluation_the_member_did_not_sign_is_refused(
    client, make, sessions, settings, db
) -> None:
    # Prepare
    kenya = make.delegate("kenya", "KE")
    with sessions() as s:
        job_id = jobs.create_job(s, settings, _spec(["kenya"], evaluate_every=1), title="Digits").id
        s.commit()
    assert register(client, kenya).status_code == 200
    assert client.get("/api/federation/work", headers=kenya.headers).json()["round"] == 1
    # Execute: the signature covers a lower accuracy than the one sent; then no signature over
    # the evaluation at all; then no example count.
    altered = _send(
        client,
        job_id,
        kenya,
        {"accuracy": 0.99, "loss": 0.1, "num_examples": 30},
        signed={"accuracy": 0.4, "loss": 0.1, "num_examples": 30},
    )
    unsigned = _send(
        client, job_id, kenya, {"accuracy": 0.99, "loss": 0.1, "num_examples": 30}, signed={}
    )
    uncounted = _send(client, job_id, kenya, {"accuracy": 0.99, "loss": 0.1})
    # Assert
    for refused in (altered, unsigned):
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["code"] == "signature.invalid"
    assert uncounted.status_code == 422, uncounted.text
    assert uncounted.json()["error"]["code"] == "federation.bad_update"
    assert db.scalars(select(Update)).all() == []


def test_a_round_not_due_asks_for_no_evaluation(client, make, sessions, settings) -> None:
    # Prepare: evaluated every 2 rounds of 3: round 1 is not due.
    kenya = make.delegate("kenya", "KE")
    with sessions() as s:
        jobs.create_job(s, settings, _spec(["kenya"], evaluate_every=2), title="Digits")
        s.commit()
    assert register(client, kenya).status_code == 200
    # Execute
    work = client.get("/api/federation/work", headers=kenya.headers).json()
    # Assert
    assert work["round"] == 1 and work["evaluate"] is False


def test_under_secagg_the_evaluation_travels_beside_the_masked_vector(
    live_server, make, sessions, settings, db, tmp_path
) -> None:
    # Prepare: a one-round SecAgg+ job of three members, evaluated; two sites opt in.
    slugs = [("kenya", "KE"), ("peru", "PE"), ("ghana", "GH")]
    actors = {slug: make.delegate(slug, code) for slug, code in slugs}
    spec = _spec(
        list(actors),
        rounds=1,
        evaluate_every=1,
        strategy={"name": "fedavg"},
        privacy={"secure_aggregation": {"clip_range": 4.0}},
    )
    with sessions() as s:
        job_id = jobs.create_job(s, settings, spec, title="Digits, masked").id
        s.commit()
    policies = {"kenya": EVALUATES, "peru": EVALUATES, "ghana": SitePolicy()}
    # Execute
    test_sizes = _train(live_server, actors, policies, tmp_path / "sites")
    # Assert: the masked updates were aggregated; the opted-in members' evaluations are kept,
    # signed, and the other's is absent.
    updates = {
        u.member_id: u
        for u in db.scalars(select(Update).join(Round).where(Round.job_id == job_id)).all()
    }
    assert len(updates) == 3 and all(u.path.endswith(".u32") for u in updates.values())
    for slug in ("kenya", "peru"):
        member = actors[slug].member
        update = updates[member.id]
        assert update.evaluation is not None
        assert update.evaluation["num_examples"] == test_sizes[slug]
        message = jobs.update_message(
            job_id, 1, slug, update.sha256, update.examples, update.evaluation
        )
        verify(db, member, message, update.signature)
    assert updates[actors["ghana"].member.id].evaluation is None
    row = db.scalars(select(Round).where(Round.job_id == job_id)).one()
    db.refresh(row)
    assert row.status == "closed"
