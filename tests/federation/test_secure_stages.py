"""SecAgg+ stages over HTTP at the hub (in process): which message wakes the waiting nodes,
the next stage's data riding on the message that closes a stage, and a message sent again
after its answer was lost."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from concord.federation import jobs, secure_round
from concord.federation.jobs import registration_message
from concord.federation.privacy import secagg
from concord.federation.wakeup import bell
from concord.governance.jobspec import JobSpec
from concord.members.keys import sign

SLUGS = [("kenya", "KE"), ("brazil", "BR"), ("norway", "NO")]


def _round(client, make, sessions, settings) -> tuple[int, int, list[Any]]:
    """Three delegates' nodes chosen for round 1 of a SecAgg+ job: (job, attempt, actors)."""
    actors = [make.delegate(slug, code) for slug, code in SLUGS]
    for actor in actors:  # each registers its node, as `concord node` does
        at = datetime.now(UTC).isoformat()
        message = registration_message(actor.member.slug, ["logreg-digits"], at)
        answer = client.post(
            "/api/federation/nodes",
            headers=actor.headers,
            json={
                "tasks": ["logreg-digits"],
                "signed_at": at,
                "signature": sign(actor.key, message),
            },
        )
        assert answer.status_code == 200, answer.text
    spec = JobSpec.model_validate(
        {
            "task": "logreg-digits",
            "participants": {"members": [slug for slug, _c in SLUGS]},
            "rounds": 1,
            "min_participants": len(SLUGS),
            "round_deadline_s": 600,
            "privacy": {"secure_aggregation": {"clip_range": 4.0}},
        }
    )
    with sessions() as s:
        job = jobs.create_job(s, settings, spec, title="Secret digits")
        jobs.advance(s, settings, job)
        s.commit()
        row = jobs.current_round(s, job)
        assert row is not None
        return job.id, row.attempt, actors


def _keys(actor: Any, job: int, attempt: int) -> dict[str, Any]:
    """A node's stage-1 message: fresh public keys and its weight, signed as a node signs."""
    body = {**secagg.ClientSecrets().public(), "weight": 100}
    digest = secure_round.body_digest(body)
    signed = secure_round.message("keys", job, 1, attempt, actor.member.slug, digest)
    return {**body, "signature": sign(actor.key, signed)}


def test_only_the_message_that_closes_a_stage_wakes_nodes_and_it_brings_the_next_data(
    client, make, sessions, settings
) -> None:
    # Prepare: a SecAgg+ round with three chosen nodes; two send their keys.
    job, attempt, actors = _round(client, make, sessions, settings)
    path = f"/api/federation/jobs/{job}/rounds/1/secagg/keys"
    first, second, last = actors
    rings = bell.rings
    for actor in (first, second):
        answer = client.post(
            path,
            params={"attempt": attempt},
            headers=actor.headers,
            json=_keys(actor, job, attempt),
        )
        assert answer.status_code == 201, answer.text
        assert "next" not in answer.json()  # the stage is open: nothing to bring yet
    woken_while_open = bell.rings - rings

    # Execute: the last node's keys close the stage; it asks to wait for the roster.
    answer = client.post(
        path,
        params={"attempt": attempt, "wait": 5},
        headers=last.headers,
        json=_keys(last, job, attempt),
    )

    # Assert: messages that closed nothing woke nobody; the closing one did, and its answer
    # holds the roster exactly as the stage's reader gives it.
    assert woken_while_open == 0
    assert bell.rings > rings
    assert answer.status_code == 201, answer.text
    roster = answer.json()["next"]
    reader = client.get(
        f"/api/federation/jobs/{job}/rounds/1/secagg/roster",
        params={"attempt": attempt},
        headers=last.headers,
    )
    assert reader.status_code == 200, reader.text
    assert roster == reader.json()
    assert roster["me"] == last.member.id
    assert set(roster["publics"]) == {str(a.member.id) for a in actors}


def test_a_message_sent_again_after_its_stage_closed_is_answered_not_refused(
    client, make, sessions, settings
) -> None:
    # Prepare: all three nodes' keys are in, so stage 1 has closed.
    job, attempt, actors = _round(client, make, sessions, settings)
    path = f"/api/federation/jobs/{job}/rounds/1/secagg/keys"
    sent = {}
    for actor in actors:
        sent[actor.member.slug] = _keys(actor, job, attempt)
        answer = client.post(
            path, params={"attempt": attempt}, headers=actor.headers, json=sent[actor.member.slug]
        )
        assert answer.status_code == 201, answer.text
    first = actors[0]

    # Execute: the first node lost its answer and sends the same message again, and then a
    # different one.
    again = client.post(
        path,
        params={"attempt": attempt, "wait": 5},
        headers=first.headers,
        json=sent[first.member.slug],
    )
    other = client.post(
        path, params={"attempt": attempt}, headers=first.headers, json=_keys(first, job, attempt)
    )

    # Assert: the repeat is answered as the first was (with the roster); new keys are not.
    assert again.status_code == 201, again.text
    assert again.json()["next"]["me"] == first.member.id
    assert other.status_code == 409, other.text
    assert other.json()["error"]["code"] == "federation.secagg_stage"
