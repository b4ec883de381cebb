"""Standards: CEL rules checked when proposed, bounded, and evaluated once adopted."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from tests.governance.conftest import cast, to_ballot

from concord.events import Event
from concord.governance import standards
from concord.governance.jobspec import JobSpec
from concord.governance.tables import Proposal

RULES = {
    "blocking": True,
    "rules": [
        {
            "id": "open-licence",
            "subject": "model",
            "expression": 'card.license in ["apache-2.0", "mit", "bsd-3-clause", '
            '"openrail", "openrail++"]',
            "explanation": "The licence is OSI-approved or an open RAIL licence.",
        },
        {
            "id": "provenance",
            "subject": "model",
            "expression": "has(card.datasets) && size(card.datasets) > 0",
            "explanation": "Training data provenance is declared.",
        },
        {
            "id": "dp-personal",
            "subject": "job",
            "expression": "!job.privacy.personal_data || (job.privacy.differential_privacy != null"
            " && job.privacy.differential_privacy.epsilon <= 8.0)",
            "explanation": "Differential privacy ε ≤ 8 for projects with personal data.",
        },
    ],
}


def propose(client: TestClient, actor: Any, body: dict[str, Any]) -> Any:
    return client.post(
        "/api/proposals",
        headers=actor.headers,
        json={
            "kind": "standard",
            "title": "Open and private",
            "texts": {"en": "Rules."},
            "body": body,
        },
    )


def test_rules_that_do_not_compile_or_are_unbounded(
    client: TestClient, assembly: dict[str, Any], db: Session
) -> None:
    kenya = assembly["kenya"]

    def with_expression(expression: str) -> Any:
        return propose(
            client,
            kenya,
            {
                "rules": [
                    {"id": "r", "subject": "job", "expression": expression, "explanation": "x"}
                ]
            },
        )

    assert with_expression("job.rounds >").json()["error"]["code"] == "standard.rule_invalid"
    nested = "job.xs.all(a, job.xs.all(b, a == b))"
    assert with_expression(nested).json()["error"]["code"] == "standard.rule_unbounded"
    assert (
        with_expression("(" * 20 + "true" + ")" * 20).json()["error"]["code"]
        == "standard.rule_unbounded"
    )
    assert (
        with_expression("true || " * 200 + "true").json()["error"]["code"]
        == "standard.rule_unbounded"
    )
    assert db.scalar(select(func.count()).select_from(Proposal)) == 0


def test_adopted_standard_checks_models_and_jobs(
    client: TestClient, assembly: dict[str, Any], sessions: Any, db: Session
) -> None:
    kenya = assembly["kenya"]
    made = propose(client, kenya, RULES)
    assert made.status_code == 201, made.text
    ref = made.json()["reference"]
    with sessions() as session:  # not adopted yet: nothing to check
        assert standards.evaluate(session, "model", {"card": {}}).results == []
    to_ballot(client, kenya, ref)
    for slug in assembly:
        cast(client, assembly[slug], ref, "yes")
    assert (
        client.post(f"/api/proposals/{ref}/close", headers=kenya.headers).json()["outcome"]
        == "adopted"
    )
    assert (
        db.scalar(
            select(func.count())
            .select_from(Event)
            .where(Event.name == "governance.standard_adopted")
        )
        == 1
    )
    with sessions() as session:
        good = standards.evaluate(
            session, "model", {"card": {"license": "mit", "datasets": ["mnist"]}}
        )
        assert good.passed and len(good.results) == 2
        bad = standards.evaluate(session, "model", {"card": {"license": "proprietary"}})
        outcomes = {r.rule: r.outcome for r in bad.results}
        assert outcomes == {"open-licence": "fail", "provenance": "fail"}
        assert len(bad.blocking_failures) == 2
        huge = standards.evaluate(
            session, "model", {"card": {"license": "mit", "x": "a" * 300_000}}
        )
        assert {r.outcome for r in huge.results} == {"error"}
        spec = JobSpec.model_validate(
            {
                "task": "mnist-2nn",
                "participants": {"members": ["kenya"]},
                "rounds": 2,
                "min_participants": 1,
                "privacy": {"personal_data": True},
            }
        )
        assert standards.evaluate(session, "job", spec.context()).blocking_failures
    # a project breaking the adopted standard is refused at proposal time
    refused = client.post(
        "/api/proposals",
        headers=kenya.headers,
        json={
            "kind": "project",
            "title": "P",
            "texts": {"en": "x"},
            "body": {
                "task": "mnist-2nn",
                "participants": {"members": ["kenya"]},
                "rounds": 2,
                "min_participants": 1,
                "privacy": {"personal_data": True, "differential_privacy": {"epsilon": 20}},
            },
        },
    )
    assert refused.json()["error"]["code"] == "proposal.job_nonconforming"
    evaluated = client.post(
        "/api/standards/evaluate",
        json={"subject": "model", "context": {"card": {"license": "mit", "datasets": ["d"]}}},
    ).json()
    assert evaluated["passed"] is True
