"""HTTP API of governance: proposals, amendments, deliberation, ballots, decisions, charter."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from concord.errors import N_, NotFound
from concord.governance import ballots, charter, deliberation, proposals, standards
from concord.governance.models import (
    AmendmentCreate,
    AmendmentPublic,
    BallotOpen,
    BallotPublic,
    BallotsCreate,
    CharterUpdate,
    Consultation,
    DecisionPublic,
    EvaluateRequest,
    ProposalCreate,
    ProposalPublic,
    StatementCreate,
    StatementPublic,
    VoteCreate,
    Withdrawal,
)
from concord.http import Db
from concord.members.auth import CurrentPerson
from concord.members.people import require_role
from concord.members.tables import Member
from concord.validation import Id

router = APIRouter(prefix="/api", tags=["governance"])


class NoDecision(NotFound):
    code = "decision.none"
    message = N_("Proposal {proposal} has no decision yet.")


def _slug(db: Db, member_id: int | None) -> str | None:
    if member_id is None:
        return None
    member = db.get(Member, member_id)
    return member.slug if member else None


@router.get("/proposals")
def list_proposals(db: Db, status: str = "", kind: str = "") -> list[ProposalPublic]:
    """Proposals, newest first, filtered by status or kind."""
    return [ProposalPublic.of(db, p) for p in proposals.listing(db, status=status, kind=kind)]


@router.post("/proposals", status_code=status.HTTP_201_CREATED)
def create_proposal(body: ProposalCreate, db: Db, person: CurrentPerson) -> ProposalPublic:
    """Drafts a proposal sponsored by your member (delegates). Logged."""
    p = proposals.create(
        db,
        person,
        kind=body.kind,
        title=body.title,
        texts=body.texts,
        body=body.body,
        cosponsors=body.cosponsors,
        member=body.member,
    )
    db.commit()
    return ProposalPublic.of(db, p)


@router.get("/proposals/{ref}")
def get_proposal(ref: str, db: Db) -> ProposalPublic:
    """One proposal by reference or id."""
    return ProposalPublic.of(db, proposals.get(db, ref))


@router.post("/proposals/{ref}/deliberation")
def open_deliberation(ref: str, db: Db, person: CurrentPerson) -> ProposalPublic:
    """Opens deliberation on a draft (sponsors). Logged."""
    p = proposals.open_deliberation(db, person, proposals.get(db, ref))
    db.commit()
    return ProposalPublic.of(db, p)


@router.post("/proposals/{ref}/ballot")
def open_ballot(ref: str, body: BallotOpen, db: Db, person: CurrentPerson) -> ProposalPublic:
    """Ends deliberation and opens the ballot, optionally with a closing time (sponsors)."""
    p = proposals.open_ballot(db, person, proposals.get(db, ref), body.closes_at)
    db.commit()
    return ProposalPublic.of(db, p)


@router.post("/proposals/{ref}/withdraw")
def withdraw(ref: str, body: Withdrawal, db: Db, person: CurrentPerson) -> ProposalPublic:
    """Withdraws a proposal before its decision (sponsors). Logged."""
    p = proposals.withdraw(db, person, proposals.get(db, ref), body.reason)
    db.commit()
    return ProposalPublic.of(db, p)


@router.post("/proposals/{ref}/consultation")
def consultation(ref: str, body: Consultation, db: Db, person: CurrentPerson) -> ProposalPublic:
    """Opens or closes the public consultation (observers may deliberate). Sponsors."""
    p = proposals.set_consultation(db, person, proposals.get(db, ref), body.public)
    db.commit()
    return ProposalPublic.of(db, p)


@router.get("/proposals/{ref}/amendments")
def list_amendments(ref: str, db: Db) -> list[AmendmentPublic]:
    """The amendments proposed to a proposal."""
    p = proposals.get(db, ref)
    return [
        AmendmentPublic.of(a, _slug(db, a.member_id) or "") for a in proposals.amendments(db, p)
    ]


@router.post("/proposals/{ref}/amendments", status_code=status.HTTP_201_CREATED)
def propose_amendment(
    ref: str, body: AmendmentCreate, db: Db, person: CurrentPerson
) -> AmendmentPublic:
    """Proposes a new text in one language during deliberation (delegates). Logged."""
    a = proposals.propose_amendment(
        db, person, proposals.get(db, ref), body.language, body.text, body.reason
    )
    db.commit()
    return AmendmentPublic.of(a, _slug(db, a.member_id) or "")


def _decide(ref: str, amendment_id: int, db: Db, person: Any, accept: bool) -> AmendmentPublic:
    p = proposals.get(db, ref)
    a = proposals.decide_amendment(
        db, person, p, proposals.get_amendment(db, p, amendment_id), accept
    )
    db.commit()
    return AmendmentPublic.of(a, _slug(db, a.member_id) or "")


@router.post("/proposals/{ref}/amendments/{amendment_id}/accept")
def accept_amendment(ref: str, amendment_id: Id, db: Db, person: CurrentPerson) -> AmendmentPublic:
    """Accepts an amendment: its text replaces the proposal's in that language (sponsors)."""
    return _decide(ref, amendment_id, db, person, True)


@router.post("/proposals/{ref}/amendments/{amendment_id}/decline")
def decline_amendment(ref: str, amendment_id: Id, db: Db, person: CurrentPerson) -> AmendmentPublic:
    """Declines an amendment (sponsors). Logged."""
    return _decide(ref, amendment_id, db, person, False)


@router.post("/proposals/{ref}/amendments/{amendment_id}/ballot")
def amendment_to_ballot(
    ref: str, amendment_id: Id, db: Db, person: CurrentPerson
) -> AmendmentPublic:
    """Puts an amendment to a ballot of its own instead of deciding it (sponsors). Logged."""
    p = proposals.get(db, ref)
    a = proposals.put_amendment_to_ballot(
        db, person, p, proposals.get_amendment(db, p, amendment_id)
    )
    db.commit()
    return AmendmentPublic.of(a, _slug(db, a.member_id) or "")


@router.post(
    "/proposals/{ref}/amendments/{amendment_id}/ballots", status_code=status.HTTP_201_CREATED
)
def cast_amendment_ballots(
    ref: str, amendment_id: Id, body: BallotsCreate, db: Db, person: CurrentPerson
) -> dict[str, Any]:
    """Casts your member's signed ballot on an amendment; the payload names `REF/A<id>`."""
    p = proposals.get(db, ref)
    a = proposals.get_amendment(db, p, amendment_id)
    rows = ballots.cast(db, person, p, [b.model_dump() for b in body.ballots], amendment=a)
    db.commit()
    return {"amendment": a.id, "log_indices": [r.log_index for r in rows]}


@router.post("/proposals/{ref}/amendments/{amendment_id}/close")
def close_amendment(ref: str, amendment_id: Id, db: Db, person: CurrentPerson) -> dict[str, Any]:
    """Closes an amendment's ballot under the rule of the proposal's kind (sponsors,
    secretariat); adopted amendments replace the text in their language."""
    p = proposals.get(db, ref)
    a = ballots.close_amendment(db, person, p, proposals.get_amendment(db, p, amendment_id))
    db.commit()
    return {"amendment": a.id, "status": a.status, "arithmetic": a.arithmetic}


@router.get("/proposals/{ref}/statements")
def list_statements(ref: str, db: Db) -> list[StatementPublic]:
    """The statements of the deliberation."""
    p = proposals.get(db, ref)
    return [StatementPublic.of(s, _slug(db, s.member_id)) for s in deliberation.statements(db, p)]


@router.post("/proposals/{ref}/statements", status_code=status.HTTP_201_CREATED)
def add_statement(
    ref: str, body: StatementCreate, db: Db, person: CurrentPerson
) -> StatementPublic:
    """Adds a statement (delegates; observers during a public consultation). Logged."""
    s = deliberation.add_statement(db, person, proposals.get(db, ref), body.text)
    db.commit()
    return StatementPublic.of(s, _slug(db, s.member_id))


@router.post("/proposals/{ref}/statements/{statement_id}/votes")
def vote_statement(
    ref: str, statement_id: Id, body: VoteCreate, db: Db, person: CurrentPerson
) -> dict[str, Any]:
    """Agrees, disagrees or passes on a statement; the latest vote counts."""
    row = deliberation.vote(db, person, proposals.get(db, ref), statement_id, body.vote)
    db.commit()
    return {"statement": row.statement_id, "vote": body.vote}


@router.get("/proposals/{ref}/map")
def opinion_map(ref: str, db: Db) -> dict[str, Any]:
    """The opinion map: participants' positions, groups, representative and consensus
    statements (recomputed only when votes changed)."""
    result = deliberation.opinion_map(db, proposals.get(db, ref))
    db.commit()
    return result


@router.get("/proposals/{ref}/ballots")
def list_ballots(ref: str, db: Db) -> list[BallotPublic]:
    """Every member's current ballot with its signature, for anyone to verify."""
    p = proposals.get(db, ref)
    return [BallotPublic.of(b, m.slug) for b, m in ballots.ballots(db, p)]


@router.post("/proposals/{ref}/ballots", status_code=status.HTTP_201_CREATED)
def cast_ballots(
    ref: str, body: BallotsCreate, db: Db, person: CurrentPerson
) -> list[BallotPublic]:
    """Casts your member's signed ballot (the last one before close counts). Logged."""
    p = proposals.get(db, ref)
    rows = ballots.cast(db, person, p, [b.model_dump() for b in body.ballots])
    db.commit()
    return [BallotPublic.of(b, _slug(db, b.member_id) or "") for b in rows]


@router.post("/proposals/{ref}/close")
def close_ballot(ref: str, db: Db, person: CurrentPerson) -> DecisionPublic:
    """Closes the ballot and records the decision with its arithmetic (sponsors, secretariat)."""
    d = ballots.close(db, person, proposals.get(db, ref))
    db.commit()
    return DecisionPublic.of(d)


@router.get("/proposals/{ref}/decision")
def get_decision(ref: str, db: Db) -> DecisionPublic:
    """The decision with its full arithmetic."""
    p = proposals.get(db, ref)
    d = ballots.decision_of(db, p)
    if d is None:
        raise NoDecision(proposal=p.reference)
    return DecisionPublic.of(d)


@router.get("/governance/recount")
def recount(db: Db) -> list[dict[str, Any]]:
    """Every decision recounted from the transparency log alone."""
    return ballots.recount_log(db)


@router.get("/charter")
def get_charter(db: Db) -> dict[str, Any]:
    """The charter in force: its TOML text, rules and the rule of each kind."""
    c = charter.current(db)
    return {
        "version": c.version,
        "text": c.text,
        "kinds": c.kinds,
        "rules": {n: r.describe() for n, r in c.rules.items()},
    }


@router.get("/charter/versions")
def charter_versions(db: Db) -> list[dict[str, Any]]:
    """Every stored version of the charter."""
    return [
        {
            "version": v.version,
            "note": v.note,
            "created_at": v.created_at.isoformat(),
            "log_index": v.log_index,
            "text": v.text,
        }
        for v in charter.versions(db)
    ]


@router.put("/charter")
def update_charter(body: CharterUpdate, db: Db, person: CurrentPerson) -> dict[str, Any]:
    """Stores a new version of the charter (secretariat). Logged."""
    require_role(person, "secretariat")
    row = charter.update(db, body.text, person, body.note)
    db.commit()
    return {"version": row.version, "log_index": row.log_index}


@router.post("/standards/evaluate")
def evaluate(body: EvaluateRequest, db: Db) -> dict[str, Any]:
    """Checks a context (a model card's `card.*` or a job's `job.*`) against every adopted
    standard."""
    return standards.evaluate(db, body.subject, body.context).to_json()
