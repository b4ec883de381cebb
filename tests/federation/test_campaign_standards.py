"""Adopted standards gate evaluation campaigns as they gate jobs: a standard saying "a campaign
on a sensitive evaluation set must come from an adopted proposal" refuses one that names no
proposal, before anything is written or logged, and lets the others open."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from tests.federation.test_evaluation import _open, _trained, publish, register_node

from concord.db import utcnow
from concord.federation.tables import Campaign, CampaignModel
from concord.governance.tables import Proposal
from concord.ledger.tables import LogEntry

SENSITIVE_SET_RULE: dict[str, Any] = {
    "blocking": True,
    "rules": [
        {
            "id": "sensitive-set-decided",
            "subject": "campaign",
            "expression": '!(campaign.evaluation_set in ["health", "patients"]) '
            "|| campaign.proposal != null",
            "explanation": "A campaign on a sensitive evaluation set comes from an adopted "
            "proposal.",
        }
    ],
}


def _proposal(sessions, actor, reference: str, kind: str, body: dict[str, Any]) -> int:
    with sessions() as s:
        row = Proposal(
            reference=reference,
            kind=kind,
            title=reference,
            texts={"en": "Text."},
            sponsor_id=actor.member.id,
            author_person_id=actor.person.id,
            status="adopted",
            body=body,
            created_at=utcnow(),
        )
        s.add(row)
        s.commit()
        return row.id


def _written(db) -> tuple[int, int, int]:
    return (
        db.scalar(select(func.count()).select_from(Campaign)),
        db.scalar(select(func.count()).select_from(CampaignModel)),
        db.scalar(select(func.count()).select_from(LogEntry)),
    )


def _hub(client, make, sessions, settings, tmp_path):
    """Kenya and Brazil with nodes, Kenya's model in the commons, the standard adopted."""
    kenya, brazil = make.delegate("kenya", "KE"), make.delegate("brazil", "BR")
    for actor in (kenya, brazil):
        register_node(client, actor)
    publish(sessions, settings, "kenya", "digits", _trained(epochs=0), tmp_path)
    _proposal(sessions, kenya, "P-2026-901", "standard", SENSITIVE_SET_RULE)
    return kenya, brazil


def test_a_campaign_on_a_sensitive_set_without_a_proposal_is_refused_and_leaves_no_trace(
    client, make, sessions, settings, tmp_path, db
) -> None:
    # Prepare
    _kenya, brazil = _hub(client, make, sessions, settings, tmp_path)
    before = _written(db)

    # Execute
    response = _open(client, brazil, evaluation_set="health")

    # Assert
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["code"] == "federation.campaign_refused"
    assert "P-2026-901/sensitive-set-decided" in error["message"]
    assert _written(db) == before  # no campaign, no model row, no log entry
    assert client.get("/api/campaigns").json() == []
    french = client.post(
        "/api/campaigns",
        json={
            "title": "Sur nos données de santé",
            "task": "logreg-digits",
            "models": [{"repo": "kenya/digits"}],
            "metric": "accuracy",
            "threshold": None,
            "evaluation_set": "health",
        },
        headers={**brazil.headers, "Accept-Language": "fr"},
    )
    assert french.status_code == 409
    assert french.json()["error"]["message"].startswith("La campagne enfreint des normes adoptées")
    assert client.get("/api/campaigns").json() == []


def test_a_campaign_on_a_sensitive_set_from_an_adopted_proposal_opens(
    client, make, sessions, settings, tmp_path, db
) -> None:
    # Prepare: a project adopted to evaluate on health data.
    kenya, brazil = _hub(client, make, sessions, settings, tmp_path)
    project = _proposal(sessions, kenya, "P-2026-902", "project", {})

    # Execute
    response = _open(client, brazil, evaluation_set="health", proposal_id=project)

    # Assert
    assert response.status_code == 201, response.text
    row = db.get(Campaign, response.json()["campaign_id"])
    assert row is not None
    assert (row.evaluation_set, row.proposal_id) == ("health", project)


def test_a_campaign_on_an_ordinary_set_opens_without_a_proposal(
    client, make, sessions, settings, tmp_path, db
) -> None:
    # Prepare
    _kenya, brazil = _hub(client, make, sessions, settings, tmp_path)

    # Execute
    response = _open(client, brazil)

    # Assert
    assert response.status_code == 201, response.text
    assert _written(db)[0] == 1


def test_standards_see_the_campaign_its_members_and_its_models_licences(
    client, make, sessions, settings, tmp_path
) -> None:
    # Prepare: a rule that holds only if the context carries the members asked, the opener,
    # the task and each model's licence from its card (kenya/digits is MIT-licensed).
    kenya, brazil = _hub(client, make, sessions, settings, tmp_path)
    rule = {
        "blocking": True,
        "rules": [
            {
                "id": "asked-and-licensed",
                "subject": "campaign",
                "expression": 'campaign.members == ["brazil", "kenya"] && campaign.task == '
                '"logreg-digits" && campaign.opened_by == "brazil" && '
                'campaign.models.all(m, m.license == "mit")',
                "explanation": "The context is complete.",
            }
        ],
    }
    _proposal(sessions, kenya, "P-2026-903", "standard", rule)

    # Execute
    response = _open(client, brazil)
    evaluated = client.post(
        "/api/standards/evaluate",
        json={"subject": "campaign", "context": {"campaign": {"evaluation_set": "health"}}},
    )

    # Assert
    assert response.status_code == 201, response.text
    assert evaluated.status_code == 200, evaluated.text
    outcomes = {r["rule"]: r["outcome"] for r in evaluated.json()["results"]}
    assert outcomes["sensitive-set-decided"] == "error"  # no `proposal` in that context
