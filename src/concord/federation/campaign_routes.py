"""HTTP API of evaluation campaigns (`federation.evaluation`): any member opens one; nodes
answer it (signed results, a signed decline, or a signed notice that the results await their
operator's approval); anyone reads the matrix, as JSON or CSV. Nodes find campaigns through
the federation's long poll (`GET /api/federation/work`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from concord.federation import evaluation
from concord.federation.tables import Campaign
from concord.federation.wakeup import bell
from concord.http import Db
from concord.members.auth import CurrentPerson
from concord.members.people import acting_member
from concord.members.tables import Person
from concord.validation import MAX_ID, Id

router = APIRouter(prefix="/api/campaigns", tags=["evaluation campaigns"])

Short = Annotated[str, Field(max_length=300)]


class ModelRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    repo: Short = Field(description="A model repository of the commons, owner/name")
    revision: Annotated[str, Field(max_length=100)] = Field(
        default="main", description="A branch, tag or commit; resolved to its commit on opening"
    )


class CampaignRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Short
    task: Annotated[str, Field(max_length=64)] = Field(
        description="The evaluation task (its metrics code is installed at the sites)"
    )
    models: list[ModelRef] = Field(max_length=20)
    metric: Annotated[str, Field(max_length=64)] = Field(
        default="accuracy", description="The metric the matrix compares"
    )
    threshold: float | None = Field(
        default=None, allow_inf_nan=False, description="A member passes when metric ≥ threshold"
    )
    evaluation_set: Annotated[str, Field(max_length=64)] = Field(
        default="test", description="The sites' evaluation set (test: test.npz)"
    )
    proposal_id: int | None = Field(
        default=None, ge=1, le=MAX_ID, description="The adopted proposal it rests on, if any"
    )


class SignedResults(BaseModel):
    model_config = ConfigDict(extra="forbid")

    payload: dict[str, Any] = Field(
        description="{purpose, campaign, member, evaluation_set, results: [{repo, revision, "
        "metrics, num_examples}]}"
    )
    signature: Annotated[str, Field(max_length=200)] = Field(
        description="Ed25519 signature (base64) by the member's key of the canonical payload"
    )


class SignedAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    signature: Annotated[str, Field(max_length=200)] = ""
    reason: Short = ""


@router.post("", status_code=201)
def open_campaign(body: CampaignRequest, db: Db, person: CurrentPerson) -> dict[str, Any]:
    """Opens a campaign of commons models you may read; the nodes whose site policy agrees
    evaluate them on their own data. Logged."""
    member = acting_member(db, person)
    campaign_id = evaluation.open_campaign(
        db,
        member,
        title=body.title,
        task=body.task,
        models=[(m.repo, m.revision) for m in body.models],
        metric=body.metric,
        threshold=body.threshold,
        proposal_id=body.proposal_id,
        evaluation_set=body.evaluation_set,
        person=person,
    )
    db.commit()
    bell.ring()  # nodes waiting for work hear of it at once
    return evaluation.matrix_json(evaluation.matrix(db, campaign_id))


@router.get("")
def list_campaigns(db: Db) -> list[dict[str, Any]]:
    """Campaigns, newest first."""
    return [_brief(db, c) for c in evaluation.list_campaigns(db)]


def _brief(db: Db, campaign: Campaign) -> dict[str, Any]:
    return {
        "id": campaign.id,
        "title": campaign.title,
        "status": campaign.status,
        "task": campaign.task,
        "metric": campaign.metric,
        "threshold": campaign.threshold,
        "job": campaign.job_id,
        "models": [
            {"repo": m.repo, "revision": m.revision}
            for m in evaluation.campaign_models(db, campaign.id)
        ],
        "created_at": campaign.created_at.isoformat(),
        "closed_at": campaign.closed_at.isoformat() if campaign.closed_at else None,
    }


@router.get("/{campaign_id}")
def campaign_matrix(campaign_id: Id, db: Db) -> dict[str, Any]:
    """The model × member matrix with its aggregates (worst member, spread, by region,
    income group and bloc, share passing the threshold), and who declined or is pending."""
    return evaluation.matrix_json(evaluation.matrix(db, campaign_id))


@router.get("/{campaign_id}/matrix.csv")
def campaign_csv(campaign_id: Id, db: Db) -> Response:
    """The matrix as CSV: one row per model and member."""
    text = evaluation.matrix_csv(evaluation.matrix(db, campaign_id))
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="campaign-{campaign_id}.csv"'},
    )


@router.post("/{campaign_id}/close")
def close(campaign_id: Id, db: Db, person: CurrentPerson) -> dict[str, Any]:
    """Closes the campaign (its opener or the secretariat): no more answers. Logged."""
    evaluation.close_campaign(db, campaign_id, person)
    db.commit()
    return evaluation.matrix_json(evaluation.matrix(db, campaign_id))


@router.post("/{campaign_id}/results", status_code=201)
def results(campaign_id: Id, body: SignedResults, db: Db, person: CurrentPerson) -> dict[str, Any]:
    """Your node's signed metrics for every model of the campaign. Logged."""
    member = acting_member(db, person)
    rows = evaluation.receive_results(db, campaign_id, member, body.payload, body.signature)
    db.commit()
    return {"campaign": campaign_id, "member": member.slug, "results": len(rows)}


@router.post("/{campaign_id}/decline")
def decline(
    campaign_id: Id, db: Db, person: CurrentPerson, body: SignedAnswer | None = None
) -> dict[str, Any]:
    """Your node declines the campaign (its site policy does not evaluate this task); signed
    `{purpose: concord.evaluation-declined, campaign, member, reason}`. Logged."""
    return _answer(db, person, campaign_id, "declined", body or SignedAnswer())


@router.post("/{campaign_id}/held")
def held(
    campaign_id: Id, db: Db, person: CurrentPerson, body: SignedAnswer | None = None
) -> dict[str, Any]:
    """Your node has evaluated and holds the results until its operator approves their
    release (`concord node approve`); signed like a decline. Logged."""
    return _answer(db, person, campaign_id, "held", body or SignedAnswer())


def _answer(
    db: Db, person: Person, campaign_id: int, status: str, body: SignedAnswer
) -> dict[str, Any]:
    member = acting_member(db, person)
    if not body.signature:
        raise evaluation.AnswerUnsigned()
    evaluation.receive_answer(db, campaign_id, member, status, body.signature, body.reason)
    db.commit()
    return {"campaign": campaign_id, "member": member.slug, "status": status}
