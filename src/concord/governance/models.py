"""Request and response models of the governance API (`…Create` in, `…Public` out)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from concord.governance import redlines
from concord.governance.tables import Amendment, Ballot, Decision, Proposal, Statement
from concord.members.tables import Member
from concord.validation import MAX_ID


class ProposalCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["standard", "project", "resolution"]
    title: str = Field(max_length=300)
    texts: dict[str, str] = Field(description='Language code → text, e.g. {"en": "…"}')
    body: dict[str, Any] = Field(
        default_factory=dict,
        description="project: the job spec; standard: {blocking, rules: [{id, subject, "
        "expression, explanation}]}; resolution: empty",
    )
    cosponsors: list[str] = Field(default_factory=list, max_length=200)
    member: str | None = Field(default=None, description="Your member (default: your own)")
    method: dict[str, Any] | None = Field(
        default=None,
        description='A resolution\'s decision method, e.g. {"name": "stv", "options": […], '
        '"seats": 3}; none: the charter rule',
    )


class BallotOpen(BaseModel):
    model_config = ConfigDict(extra="forbid")

    closes_at: datetime | None = None


class Withdrawal(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=2000)


class Consultation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    public: bool


class AmendmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    language: str = Field(default="en", max_length=8)
    text: str = Field(max_length=20_000)
    reason: str = Field(default="", max_length=2000)


class StatementCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(max_length=2000)
    language: str = Field(
        default="en", description="The language it is written in (ar zh en fr ru es)."
    )


class VoteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    vote: Literal["agree", "disagree", "pass"]


class SignedBallot(BaseModel):
    model_config = ConfigDict(extra="forbid")

    payload: dict[str, Any]
    signature: str = Field(max_length=200)


class BallotsCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ballots: list[SignedBallot] = Field(min_length=1, max_length=10)


class CharterUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(max_length=64_000)
    note: str = Field(default="", max_length=2000)


class EvaluateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: Literal["model", "job", "campaign"]
    context: dict[str, Any]


class AmendmentPublic(BaseModel):
    id: int
    member: str
    language: str
    text: str
    reason: str
    status: str
    created_at: datetime
    distance: int = Field(default=0, description="Lines deleted plus inserted")
    diff: list[dict[str, str]] = Field(
        default_factory=list, description='The original with tracked changes: {"op", "line"}'
    )

    @classmethod
    def of(cls, a: Amendment, slug: str, original: str | None = None) -> AmendmentPublic:
        tracked = redlines.diff(original, a.text) if original is not None else []
        return cls(
            distance=redlines.distance(original, a.text) if original is not None else 0,
            diff=tracked,
            id=a.id,
            member=slug,
            language=a.language,
            text=a.text,
            reason=a.reason,
            status=a.status,
            created_at=a.created_at,
        )


class StatementPublic(BaseModel):
    id: int
    text: str = Field(description="Empty when the secretariat hid the statement.")
    language: str = Field(description="The language of the original.")
    member: str | None
    created_at: datetime
    hidden: bool = False
    hidden_reason: str = ""

    @classmethod
    def of(cls, s: Statement, slug: str | None) -> StatementPublic:
        hidden = s.hidden_at is not None
        return cls(
            id=s.id,
            text="" if hidden else s.text,
            language=s.language,
            member=slug,
            created_at=s.created_at,
            hidden=hidden,
            hidden_reason=s.hidden_reason if hidden else "",
        )


class StatementHide(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(max_length=2000)


class NoticePublic(BaseModel):
    """A statement of yours that the secretariat hid, and why."""

    proposal: str
    statement: int
    text: str
    reason: str
    hidden_at: datetime


class TranslationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    statement: int | None = Field(
        default=None, ge=1, le=MAX_ID, description="A statement; none: the proposal's text."
    )
    language: str = Field(description="ar zh en fr ru es")
    text: str = Field(max_length=20_000)


class TranslationPublic(BaseModel):
    statement: int | None
    language: str
    text: str
    origin: str = Field(description='"person" or "machine" (a machine translation)')
    translator: str = Field(description="Who translated (name and member); empty for machines.")
    created_at: datetime
    log_index: int


class ShownPublic(BaseModel):
    """A text as a reader in `language` sees it, with its provenance."""

    statement: int | None
    text: str
    language: str
    origin: str = Field(description='"original", "person" or "machine"')
    translator: str
    original_language: str
    hidden: bool = False
    hidden_reason: str = ""


class BallotPublic(BaseModel):
    member: str
    choice: str
    reason: str
    payload: dict[str, Any]
    signature: str
    cast_at: datetime
    log_index: int

    @classmethod
    def of(cls, b: Ballot, slug: str) -> BallotPublic:
        return cls(
            member=slug,
            choice=b.choice,
            reason=b.reason,
            payload=b.payload,
            signature=b.signature,
            cast_at=b.cast_at,
            log_index=b.log_index,
        )


class DecisionPublic(BaseModel):
    id: int
    outcome: str
    rule: str
    arithmetic: dict[str, Any]
    decided_at: datetime
    log_index: int

    @classmethod
    def of(cls, d: Decision) -> DecisionPublic:
        return cls(
            id=d.id,
            outcome=d.outcome,
            rule=d.rule,
            arithmetic=d.arithmetic,
            decided_at=d.decided_at,
            log_index=d.log_index,
        )


class ProposalPublic(BaseModel):
    id: int
    reference: str
    kind: str
    title: str
    texts: dict[str, str]
    sponsor: str
    cosponsors: list[str]
    status: str
    body: dict[str, Any]
    public_consultation: bool
    created_at: datetime
    deliberation_at: datetime | None
    ballot_at: datetime | None
    closes_at: datetime | None
    closed_at: datetime | None
    method: dict[str, Any] | None = None

    @classmethod
    def of(cls, session: Session, p: Proposal) -> ProposalPublic:
        def slug(i: int) -> str:
            m = session.get(Member, i)
            return m.slug if m else str(i)

        return cls(
            id=p.id,
            reference=p.reference,
            kind=p.kind,
            title=p.title,
            texts=p.texts,
            sponsor=slug(p.sponsor_id),
            cosponsors=[slug(i) for i in p.cosponsor_ids],
            status=p.status,
            body=p.body,
            public_consultation=p.public_consultation,
            created_at=p.created_at,
            deliberation_at=p.deliberation_at,
            ballot_at=p.ballot_at,
            closes_at=p.closes_at,
            closed_at=p.closed_at,
            method=p.method,
        )


class ProxyCreate(BaseModel):
    """A proxy signed with the delegating member's key (see `concord.governance.proxies`)."""

    payload: dict[str, Any]
    signature: str = Field(max_length=200)
