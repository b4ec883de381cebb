"""Evaluation campaigns: "does this model work for us?"

A campaign names models of the commons (repository at a fixed commit) and a task whose
metrics code is installed at the sites. Nodes get the campaign through the same long poll as
training work (`work_for`), evaluate each model on their own test set — the data never moves —
and send back signed metrics with their example counts; a site whose policy refuses answers a
signed decline, and one that wants its operator's approval first says so (`held`).

The matrix is model × member, with the aggregates the equity question needs: the members'
mean (one member, one voice) and the example-weighted mean, the worst member, the spread, the
means by UN region, income group and Global South / North bloc, and the share of members for
whom the model passes the campaign's threshold. Every act goes to the transparency log.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from concord.commons import access
from concord.commons import repositories as repos
from concord.commons.tables import Repository
from concord.db import utcnow
from concord.errors import N_, ConcordError, Conflict, Forbidden, Invalid, NotFound
from concord.federation.tables import (
    Campaign,
    CampaignAnswer,
    CampaignModel,
    CampaignResult,
    Job,
    Node,
    Round,
)
from concord.governance.standards import evaluate
from concord.ledger.log import append, canonical_json
from concord.members.countries import country
from concord.members.keys import verify
from concord.members.tables import Member, Person

log = logging.getLogger("concord.federation")

# --- errors


class UnknownCampaign(NotFound):
    code = "federation.campaign_unknown"
    message = N_("There is no evaluation campaign {campaign}.")


class CampaignClosed(Conflict):
    code = "federation.campaign_closed"
    message = N_("Evaluation campaign {campaign} is closed; it takes no more answers.")


class BadCampaign(Invalid):
    code = "federation.bad_campaign"
    message = N_("The campaign cannot be opened: {reason}")


class CampaignRefused(Conflict):
    code = "federation.campaign_refused"
    message = N_("The campaign breaks adopted standards: {rules}")


class ProposalNotAdopted(Conflict):
    code = "federation.campaign_proposal"
    message = N_("Proposal {proposal} has not been adopted; a campaign cannot rest on it.")


class NotAsked(Forbidden):
    code = "federation.campaign_not_asked"
    message = N_("Member “{member}” is not asked to evaluate in campaign {campaign}.")


class AlreadyAnswered(Conflict):
    code = "federation.campaign_answered"
    message = N_("Member “{member}” has already answered campaign {campaign}.")


class BadEvaluation(Invalid):
    code = "federation.bad_evaluation"
    message = N_("The evaluation is refused: {reason}")


class AnswerUnsigned(Invalid):
    code = "federation.campaign_answer_unsigned"
    message = N_("A node answers a campaign by signing it with the member's key (field signature).")


class NotYourCampaign(Forbidden):
    code = "federation.campaign_not_yours"
    message = N_("Only the member that opened campaign {campaign}, or the secretariat, closes it.")


# --- the matrix (what pages, the API and the CSV show)


@dataclass(frozen=True)
class Cell:
    member: str
    member_name: str
    region: str
    income_group: str
    bloc: str  # "south" or "north"
    metrics: dict[str, float]
    num_examples: int


@dataclass(frozen=True)
class ModelSummary:
    repo: str
    revision: str
    metric: str
    mean: float | None  # the members' mean: one member, one voice
    weighted_mean: float | None  # weighted by each member's examples
    worst_member: str | None
    worst: float | None
    spread: float | None  # best minus worst
    by_region: dict[str, float]
    by_income: dict[str, float]
    by_bloc: dict[str, float]
    pass_share: float | None  # share of members with metric ≥ threshold
    cells: list[Cell]
    declined: list[str]
    pending: list[str]
    held: list[str] = field(default_factory=list)  # evaluated, awaiting their operator


@dataclass(frozen=True)
class Matrix:
    campaign_id: int
    title: str
    status: str
    metric: str
    threshold: float | None
    models: list[ModelSummary]
    task: str = ""
    evaluation_set: str = "test"
    job_id: int | None = None
    proposal_id: int | None = None
    opened_by: str | None = None  # a member's handle; None: the hub (a job's final model)
    created_at: str = ""  # ISO 8601
    closed_at: str | None = None


# --- what nodes sign


def result_message(payload: dict[str, Any]) -> bytes:
    """What a node signs for its results: the whole payload, canonically."""
    return canonical_json(payload)


def result_payload(
    campaign: int, member: str, results: list[dict[str, Any]], evaluation_set: str = "test"
) -> dict[str, Any]:
    """A node's results: per model `{repo, revision, metrics, num_examples}`."""
    return {
        "purpose": "concord.evaluation-results",
        "campaign": campaign,
        "member": member,
        "evaluation_set": evaluation_set,
        "results": results,
    }


def answer_message(campaign: int, member: str, status: str, reason: str = "") -> bytes:
    """What a node signs to decline a campaign, or to say its results await approval."""
    return canonical_json(
        {
            "purpose": f"concord.evaluation-{status}",
            "campaign": campaign,
            "member": member,
            "reason": reason,
        }
    )


# --- opening and closing

NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


def metric_name(name: object) -> bool:
    """A metric is named as its task names it ("accuracy", "F1", "top-5 accuracy"): any short
    printable text."""
    return isinstance(name, str) and 0 < len(name) <= 64 and name.isprintable()


def open_campaign(
    session: Session,
    member: Member | None,
    *,
    title: str,
    task: str,
    models: list[tuple[str, str]],
    metric: str,
    threshold: float | None,
    proposal_id: int | None = None,
    evaluation_set: str = "test",
    person: Person | None = None,
    members: list[int] | None = None,
    job_id: int | None = None,
) -> int:
    """Opens a campaign of `models` ((repo, revision) pairs; a branch or tag is resolved to
    its commit now, so every node evaluates the same bytes) and logs it. `member` None: the
    hub opens it (a job's final model). Each model must be readable by the opener (`person`
    when given, else the member's own view). The caller commits."""
    title = title.strip()
    if not title:
        raise BadCampaign(reason=N_("a title is needed"))
    if not NAME.match(task or ""):
        raise BadCampaign(reason=N_("name the evaluation task (lowercase letters, digits, -_.)"))
    if not metric_name(metric):
        raise BadCampaign(reason=N_("name the metric to compare (e.g. accuracy)"))
    if not NAME.match(evaluation_set or ""):
        raise BadCampaign(reason=N_("the evaluation set is a plain name (e.g. test)"))
    if threshold is not None and not math.isfinite(threshold):
        raise BadCampaign(reason=N_("the threshold must be a finite number"))
    if not models:
        raise BadCampaign(reason=N_("name at least one model"))
    if len(models) > 20:
        raise BadCampaign(reason=N_("at most 20 models per campaign"))
    if proposal_id is not None:
        _require_adopted(session, proposal_id)
    resolved: list[tuple[str, str]] = []
    cards: dict[str, dict[str, Any]] = {}  # each model's card metadata, for the standards
    for ref, revision in models:
        owner, _sep, name = ref.partition("/")
        repo = repos.seen(session, "model", owner, name, person) if person else None
        if repo is None:
            repo = repos.require(session, "model", owner, name)
            if not _member_reads(repo, member):
                raise repos.UnknownRepository(kind="model", repo=ref)
        row = repos.resolve(session, repo, revision or "main")
        if person is not None:
            access.require_read(session, repo, row, person)
        elif member is not None and repos.gate(row.card) and not _owner(repo, member):
            raise access.GatedRepository(repo=ref)
        if (ref, row.sha) not in resolved:
            resolved.append((ref, row.sha))
            card = row.card or {}  # a card without a licence falls back on the repository's
            cards[f"{ref}@{row.sha}"] = {**card, "license": card.get("license", repo.licence)}
    campaign = Campaign(
        title=title[:300],
        opened_by=member.id if member is not None else None,
        task=task,
        metric=metric,
        threshold=threshold,
        evaluation_set=evaluation_set,
        status="open",
        proposal_id=proposal_id,
        job_id=job_id,
        members=sorted(set(members or [])),
        created_at=utcnow(),
    )
    # Standards are checked before anything is written or logged, as for a job.
    report = evaluate(session, "campaign", standards_context(session, campaign, member, cards))
    if report.blocking_failures:
        raise CampaignRefused(
            rules="; ".join(
                f"{r.standard}/{r.rule}: {r.explanation}" for r in report.blocking_failures
            )
        )
    session.add(campaign)
    session.flush()
    for ref, sha in resolved:
        session.add(CampaignModel(campaign_id=campaign.id, repo=ref, revision=sha))
    session.flush()
    append(
        session,
        "federation.campaign_opened",
        {
            "campaign": campaign.id,
            "title": campaign.title,
            "task": task,
            "metric": metric,
            "threshold": threshold,
            "evaluation_set": evaluation_set,
            "models": [{"repo": r, "revision": s} for r, s in resolved],
            "proposal": proposal_id,
            "job": job_id,
            "opened_by": member.slug if member is not None else None,
        },
        member_id=member.id if member is not None else None,
    )
    return campaign.id


def standards_context(
    session: Session,
    campaign: Campaign,
    opener: Member | None,
    cards: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """What adopted standards see of a campaign about to open (`campaign.*`): its task and
    evaluation set, the proposal it rests on (null if none), the members asked (slugs) and
    each model with its licence and the data sets its card declares ([] if none), so that a
    rule can say e.g. "a campaign on a sensitive set needs a decision"."""
    ids = asked(session, campaign)
    slugs = session.scalars(select(Member.slug).where(Member.id.in_(ids))).all() if ids else []
    models = []
    for key, card in cards.items():
        repo, _at, sha = key.rpartition("@")
        datasets = card.get("datasets") or []  # the card's YAML: a name or a list of names
        if not isinstance(datasets, list):
            datasets = [datasets] if isinstance(datasets, str) else []
        models.append(
            {
                "repo": repo,
                "revision": sha,
                "license": card.get("license"),
                "datasets": datasets,
            }
        )
    return {
        "campaign": {
            "title": campaign.title,
            "task": campaign.task,
            "metric": campaign.metric,
            "threshold": campaign.threshold,
            "evaluation_set": campaign.evaluation_set,
            "proposal": campaign.proposal_id,
            "job": campaign.job_id,
            "opened_by": opener.slug if opener is not None else None,
            "members": sorted(slugs),
            "models": models,
        }
    }


def _owner(repo: Repository, member: Member | None) -> bool:
    return member is not None and repo.member_id == member.id


def _member_reads(repo: Repository, member: Member | None) -> bool:
    """A private repository is the hub's own or its member's (no person to ask about)."""
    return not repo.private or member is None or _owner(repo, member)


def _require_adopted(session: Session, proposal_id: int) -> None:
    """As a job does, a campaign that rests on a decision names an adopted proposal."""
    from concord.governance.tables import Proposal

    proposal = session.get(Proposal, proposal_id)
    if proposal is None or proposal.status != "adopted":
        raise ProposalNotAdopted(proposal=proposal_id)


def get_campaign(session: Session, campaign_id: int) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise UnknownCampaign(campaign=campaign_id)
    return campaign


def close_campaign(session: Session, campaign_id: int, person: Person) -> Campaign:
    """Closes a campaign (its opener's delegates or the secretariat); logged. Closing twice
    changes nothing."""
    campaign = get_campaign(session, campaign_id)
    mine = campaign.opened_by is not None and person.member_id == campaign.opened_by
    if not mine and person.role != "secretariat":
        raise NotYourCampaign(campaign=campaign_id)
    if campaign.status == "closed":
        return campaign
    campaign.status, campaign.closed_at = "closed", utcnow()
    append(
        session,
        "federation.campaign_closed",
        {"campaign": campaign.id, "results": _answered(session, campaign)},
        member_id=person.member_id if mine else None,
    )
    return campaign


def _answered(session: Session, campaign: Campaign) -> int:
    return len(
        set(
            session.scalars(
                select(CampaignResult.member_id).where(CampaignResult.campaign_id == campaign.id)
            ).all()
        )
    )


def list_campaigns(session: Session) -> list[Campaign]:
    return list(session.scalars(select(Campaign).order_by(Campaign.id.desc())).all())


def campaign_models(session: Session, campaign_id: int) -> list[CampaignModel]:
    return list(
        session.scalars(
            select(CampaignModel)
            .where(CampaignModel.campaign_id == campaign_id)
            .order_by(CampaignModel.id)
        ).all()
    )


# --- who is asked, and the work nodes get


def asked(session: Session, campaign: Campaign) -> set[int]:
    """The members asked: the campaign's list if it has one, else every active member whose
    registered node has the task installed."""
    if campaign.members:
        return {int(m) for m in campaign.members}
    rows = session.execute(
        select(Node.member_id, Node.tasks)
        .join(Member, Member.id == Node.member_id)
        .where(Member.status == "active")
    ).all()
    return {member_id for member_id, tasks in rows if campaign.task in (tasks or [])}


def _node_has_task(session: Session, member: Member, task: str) -> bool:
    node = session.scalars(select(Node).where(Node.member_id == member.id)).first()
    return node is not None and task in (node.tasks or [])


def work_for(session: Session, member: Member) -> dict[str, Any] | None:
    """The oldest open campaign this member's node should answer, if any: its node has the
    task, the member is asked, and it has not answered (results, decline, or held)."""
    campaigns = session.scalars(
        select(Campaign).where(Campaign.status == "open").order_by(Campaign.id)
    ).all()
    for campaign in campaigns:
        if not _node_has_task(session, member, campaign.task):
            continue
        if campaign.members and member.id not in campaign.members:
            continue
        if _has_answered(session, campaign, member):
            continue
        return {
            "kind": "evaluation",
            "campaign": campaign.id,
            "title": campaign.title,
            "task": campaign.task,
            "metric": campaign.metric,
            "evaluation_set": campaign.evaluation_set,
            "models": [
                {"repo": m.repo, "revision": m.revision}
                for m in campaign_models(session, campaign.id)
            ],
        }
    return None


def taking_part(session: Session, member: Member) -> list[int]:
    """Open campaigns this member's node still owes an answer to."""
    return [
        c.id
        for c in session.scalars(select(Campaign).where(Campaign.status == "open")).all()
        if _node_has_task(session, member, c.task)
        and (not c.members or member.id in c.members)
        and not _has_answered(session, c, member)
    ]


def _has_answered(session: Session, campaign: Campaign, member: Member) -> bool:
    result = session.scalars(
        select(CampaignResult.id).where(
            CampaignResult.campaign_id == campaign.id, CampaignResult.member_id == member.id
        )
    ).first()
    if result is not None:
        return True
    return _answer(session, campaign, member) is not None


def _answer(session: Session, campaign: Campaign, member: Member) -> CampaignAnswer | None:
    return session.scalars(
        select(CampaignAnswer).where(
            CampaignAnswer.campaign_id == campaign.id, CampaignAnswer.member_id == member.id
        )
    ).first()


def _require_open_and_asked(session: Session, campaign: Campaign, member: Member) -> None:
    if campaign.status != "open":
        raise CampaignClosed(campaign=campaign.id)
    if member.id not in asked(session, campaign):
        raise NotAsked(member=member.slug, campaign=campaign.id)


# --- nodes' answers


def receive_results(
    session: Session, campaign_id: int, member: Member, payload: dict[str, Any], signature: str
) -> list[CampaignResult]:
    """Takes a node's signed results (every model of the campaign, once): checked, stored per
    model, logged. A node resending the same payload gets the same rows. The caller commits."""
    campaign = get_campaign(session, campaign_id)
    models = {(m.repo, m.revision): m for m in campaign_models(session, campaign.id)}
    earlier = list(
        session.scalars(
            select(CampaignResult).where(
                CampaignResult.campaign_id == campaign.id, CampaignResult.member_id == member.id
            )
        ).all()
    )
    verify(session, member, result_message(payload), signature)
    if earlier:
        if earlier[0].payload == payload:
            return earlier  # a resend after a lost answer
        raise AlreadyAnswered(member=member.slug, campaign=campaign.id)
    _require_open_and_asked(session, campaign, member)
    answer = _answer(session, campaign, member)
    if answer is not None and answer.status == "declined":
        raise AlreadyAnswered(member=member.slug, campaign=campaign.id)
    rows = _checked(payload, campaign, member, models)
    now = utcnow()
    stored = []
    for model, metrics, examples in rows:
        row = CampaignResult(
            campaign_id=campaign.id,
            model_id=model.id,
            member_id=member.id,
            metrics=metrics,
            num_examples=examples,
            payload=payload,
            signature=signature,
            received_at=now,
        )
        session.add(row)
        stored.append(row)
    if answer is not None:  # the held results are released: no longer pending approval
        session.delete(answer)
    session.flush()
    append(
        session,
        "federation.campaign_result",
        {
            "campaign": campaign.id,
            "member": member.slug,
            "evaluation_set": campaign.evaluation_set,
            "results": [
                {
                    "repo": m.repo,
                    "revision": m.revision,
                    "metrics": metrics,
                    "num_examples": examples,
                }
                for m, metrics, examples in rows
            ],
            "signature": signature,
        },
        member_id=member.id,
    )
    return stored


def _checked(
    payload: dict[str, Any],
    campaign: Campaign,
    member: Member,
    models: dict[tuple[str, str], CampaignModel],
) -> list[tuple[CampaignModel, dict[str, float], int]]:
    """The payload's results, one per model of the campaign, with finite metrics."""
    if (
        payload.get("purpose") != "concord.evaluation-results"
        or payload.get("campaign") != campaign.id
        or payload.get("member") != member.slug
    ):
        raise BadEvaluation(reason=N_("the payload names another campaign or member"))
    results = payload.get("results")
    if not isinstance(results, list):
        raise BadEvaluation(reason=N_("results must be a list"))
    rows: list[tuple[CampaignModel, dict[str, float], int]] = []
    seen: set[tuple[str, str]] = set()
    for item in results:
        if not isinstance(item, dict):
            raise BadEvaluation(reason=N_("each result is an object"))
        key = (str(item.get("repo")), str(item.get("revision")))
        if key not in models or key in seen:
            raise BadEvaluation(reason=N_("a result names a model outside the campaign"))
        seen.add(key)
        examples = item.get("num_examples")
        if not isinstance(examples, int) or isinstance(examples, bool):
            raise BadEvaluation(reason=N_("the number of examples must be positive"))
        if not 0 < examples < 10**9:
            raise BadEvaluation(reason=N_("the number of examples must be positive"))
        metrics = item.get("metrics")
        if not isinstance(metrics, dict) or len(metrics) > 50:
            raise BadEvaluation(reason=N_("metrics must be a map of names to numbers"))
        clean: dict[str, float] = {}
        for name, value in metrics.items():
            if not metric_name(name):
                raise BadEvaluation(reason=N_("metrics must be a map of names to numbers"))
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise BadEvaluation(reason=N_("metrics must be a map of names to numbers"))
            if not math.isfinite(float(value)):
                raise BadEvaluation(reason=N_("metrics must be finite"))
            clean[name] = float(value)
        rows.append((models[key], clean, examples))
    if seen != set(models):
        raise BadEvaluation(reason=N_("results must cover every model of the campaign"))
    return rows


def receive_answer(
    session: Session,
    campaign_id: int,
    member: Member,
    status: str,
    signature: str,
    reason: str = "",
) -> CampaignAnswer:
    """A node's signed `declined` (site policy) or `held` (awaiting approval); logged. The
    same answer again is taken once. The caller commits."""
    if status not in ("declined", "held"):
        raise BadEvaluation(reason=N_("an answer is declined or held"))
    reason = reason[:300]
    campaign = get_campaign(session, campaign_id)
    verify(session, member, answer_message(campaign.id, member.slug, status, reason), signature)
    earlier = _answer(session, campaign, member)
    if earlier is not None and earlier.status == status:
        return earlier
    if earlier is not None or _has_answered(session, campaign, member):
        raise AlreadyAnswered(member=member.slug, campaign=campaign.id)
    _require_open_and_asked(session, campaign, member)
    answer = CampaignAnswer(
        campaign_id=campaign.id,
        member_id=member.id,
        status=status,
        reason=reason,
        signature=signature,
        received_at=utcnow(),
    )
    session.add(answer)
    session.flush()
    append(
        session,
        "federation.campaign_declined" if status == "declined" else "federation.campaign_held",
        {"campaign": campaign.id, "member": member.slug, "reason": reason},
        member_id=member.id,
    )
    return answer


# --- the matrix and its aggregates


def _cell_of(member: Member, metrics: dict[str, float], examples: int) -> Cell:
    c = country(member.country_code)
    return Cell(
        member=member.slug,
        member_name=member.name,
        region=c.region or "",
        income_group=c.income_group or "",
        bloc="south" if c.global_south else "north",
        metrics=dict(metrics),
        num_examples=examples,
    )


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _by(cells: list[Cell], metric: str, key: str) -> dict[str, float]:
    groups: dict[str, list[float]] = {}
    for cell in cells:
        if metric in cell.metrics:
            groups.setdefault(getattr(cell, key) or "—", []).append(cell.metrics[metric])
    return {name: _mean(values) for name, values in sorted(groups.items())}


def summarise(
    repo: str,
    revision: str,
    metric: str,
    threshold: float | None,
    cells: list[Cell],
    declined: list[str] | None = None,
    pending: list[str] | None = None,
    held: list[str] | None = None,
) -> ModelSummary:
    """One model's row of the matrix with its aggregates (cells lacking the metric count in
    no aggregate)."""
    scored = [c for c in cells if metric in c.metrics]
    values = [c.metrics[metric] for c in scored]
    worst = min(scored, key=lambda c: (c.metrics[metric], c.member)) if scored else None
    examples = sum(c.num_examples for c in scored)
    return ModelSummary(
        repo=repo,
        revision=revision,
        metric=metric,
        mean=_mean(values) if values else None,
        weighted_mean=(
            sum(c.metrics[metric] * c.num_examples for c in scored) / examples if examples else None
        ),
        worst_member=worst.member if worst else None,
        worst=worst.metrics[metric] if worst else None,
        spread=max(values) - min(values) if values else None,
        by_region=_by(scored, metric, "region"),
        by_income=_by(scored, metric, "income_group"),
        by_bloc=_by(scored, metric, "bloc"),
        pass_share=(
            sum(1 for v in values if v >= threshold) / len(values)
            if threshold is not None and values
            else None
        ),
        cells=sorted(cells, key=lambda c: c.member),
        declined=sorted(declined or []),
        pending=sorted(pending or []),
        held=sorted(held or []),
    )


def matrix(session: Session, campaign_id: int) -> Matrix:
    """The campaign's model × member matrix with its aggregates."""
    campaign = get_campaign(session, campaign_id)
    models = campaign_models(session, campaign.id)
    results = session.scalars(
        select(CampaignResult).where(CampaignResult.campaign_id == campaign.id)
    ).all()
    answers = session.scalars(
        select(CampaignAnswer).where(CampaignAnswer.campaign_id == campaign.id)
    ).all()
    expected = asked(session, campaign)
    ids = expected | {r.member_id for r in results} | {a.member_id for a in answers}
    members = {m.id: m for m in session.scalars(select(Member).where(Member.id.in_(ids))).all()}
    declined = [members[a.member_id].slug for a in answers if a.status == "declined"]
    held = [members[a.member_id].slug for a in answers if a.status == "held"]
    summaries = []
    for model in models:
        mine = [r for r in results if r.model_id == model.id]
        done = {r.member_id for r in mine}
        answered = done | {a.member_id for a in answers if a.status == "declined"}
        cells = [_cell_of(members[r.member_id], r.metrics, r.num_examples) for r in mine]
        pending = [members[m].slug for m in expected - answered if m in members]
        summaries.append(
            summarise(
                model.repo,
                model.revision,
                campaign.metric,
                campaign.threshold,
                cells,
                declined,
                pending,
                [h for h in held if h in pending],
            )
        )
    return Matrix(
        campaign_id=campaign.id,
        title=campaign.title,
        status=campaign.status,
        metric=campaign.metric,
        threshold=campaign.threshold,
        models=summaries,
        task=campaign.task,
        evaluation_set=campaign.evaluation_set,
        job_id=campaign.job_id,
        proposal_id=campaign.proposal_id,
        opened_by=_slug(session, campaign.opened_by),
        created_at=campaign.created_at.isoformat(),
        closed_at=campaign.closed_at.isoformat() if campaign.closed_at else None,
    )


def _slug(session: Session, member_id: int | None) -> str | None:
    member = session.get(Member, member_id) if member_id is not None else None
    return member.slug if member is not None else None


def latest_for_model(session: Session, repo: str) -> Matrix | None:
    """The matrix of the newest campaign that includes `repo` (any revision), if any."""
    found = session.scalar(
        select(CampaignModel.campaign_id)
        .where(CampaignModel.repo == repo)
        .order_by(CampaignModel.campaign_id.desc())
        .limit(1)
    )
    return matrix(session, found) if found is not None else None


def campaign_for_job(session: Session, job_id: int) -> int | None:
    """The campaign the hub opened for a training job's final model, if any."""
    return session.scalar(
        select(Campaign.id).where(Campaign.job_id == job_id).order_by(Campaign.id).limit(1)
    )


def matrix_json(m: Matrix) -> dict[str, Any]:
    return asdict(m)


def matrix_csv(m: Matrix) -> str:
    """One row per model and member: results, then members that declined or are pending."""
    names: list[str] = [m.metric]
    for s in m.models:
        for cell in s.cells:
            names += [k for k in sorted(cell.metrics) if k not in names]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [
            "repo",
            "revision",
            "member",
            "member_name",
            "region",
            "income_group",
            "bloc",
            "status",
            "num_examples",
            *names,
        ]
    )
    for s in m.models:
        for cell in s.cells:
            writer.writerow(
                [
                    s.repo,
                    s.revision,
                    cell.member,
                    cell.member_name,
                    cell.region,
                    cell.income_group,
                    cell.bloc,
                    "result",
                    cell.num_examples,
                    *[_number(cell.metrics.get(n)) for n in names],
                ]
            )
        for slug in s.declined:
            writer.writerow(
                [s.repo, s.revision, slug, "", "", "", "", "declined", "", *[""] * len(names)]
            )
        for slug in s.pending:
            status = "held" if slug in s.held else "pending"
            writer.writerow(
                [s.repo, s.revision, slug, "", "", "", "", status, "", *[""] * len(names)]
            )
    return out.getvalue()


def _number(value: float | None) -> str:
    return "" if value is None else repr(float(value))


# --- the end of a training job


def open_for_job(session: Session, job: Job, metrics: dict[str, Any]) -> int | None:
    """When a job's final model is published, the hub opens a campaign of it among the job's
    participants, so that its page can show the model's accuracy member by member."""
    revision = (job.publication or {}).get("revision")
    if not job.model_repo or not revision:
        return None
    rounds = session.scalars(
        select(Round.participants).where(Round.job_id == job.id, Round.status == "closed")
    ).all()
    participants = sorted({int(m) for row in rounds for m in (row or [])})
    if not participants:
        return None
    metric = "accuracy" if "accuracy" in metrics or not metrics else sorted(metrics)[0]
    savepoint = session.begin_nested()  # a campaign that cannot open never undoes the job's end
    try:
        campaign_id = open_campaign(
            session,
            None,
            title=f"Final model of job {job.id}",
            task=str(job.spec.get("task", "")),
            models=[(job.model_repo, revision)],
            metric=metric,
            threshold=None,
            members=participants,
            job_id=job.id,
        )
    except ConcordError as error:
        savepoint.rollback()
        log.warning("no campaign for the final model of job %s: %s", job.id, error.code)
        return None
    savepoint.commit()
    get_campaign(session, campaign_id).proposal_id = job.proposal_id  # adopted: its job ran
    return campaign_id
