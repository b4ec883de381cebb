"""Request and response models of the capacity API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from concord.capacity.priorities import Standing
from concord.capacity.tables import Enrolment, ExchangeItem, Match, PriorityRanking, Programme


class SessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(default="", max_length=200)
    starts: datetime = Field(description="Local time in `timezone` (or with an offset)")
    ends: datetime
    timezone: str = Field(description="IANA time zone, e.g. Africa/Nairobi")


class ProgrammeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field(description="Handle of the hosting member (yours)")
    title: str = Field(max_length=200)
    kind: str = Field(description="workshop, seminar or course")
    area: str = Field(
        description="infrastructure, industrial-empowerment, talent-training, "
        "data-management or security-governance"
    )
    languages: list[str]
    mode: str = Field(description="in-person, online or hybrid")
    place: str = Field(default="", max_length=200)
    seats: int
    eligibility: str = Field(default="", description="priority:BLOC or only:BLOC")
    description: str = Field(default="", max_length=5000)
    sessions: list[SessionCreate]


class SessionPublic(BaseModel):
    title: str
    starts_at: datetime
    ends_at: datetime
    timezone: str


class PriorityPublic(BaseModel):
    """A programme's place in the priorities the assembly adopted."""

    rank: int = Field(description="1 is the first priority")
    option: str = Field(description="The ranked option: the programme's area or its title")
    proposal: str = Field(description="Reference of the proposal that adopted the ranking")


class ProgrammePublic(BaseModel):
    id: int
    title: str
    kind: str
    area: str
    host: int
    languages: list[str]
    mode: str
    place: str
    seats: int
    seats_taken: int
    waiting: int
    eligibility: str
    description: str
    sessions: list[SessionPublic]
    priority: PriorityPublic | None = Field(
        default=None, description="Its rank in the adopted priorities, if they reach it"
    )

    @classmethod
    def of(
        cls, p: Programme, taken: int, waiting: int, standing: Standing | None = None
    ) -> ProgrammePublic:
        return cls(
            id=p.id,
            title=p.title,
            kind=p.kind,
            area=p.area,
            host=p.host_member_id,
            languages=list(p.languages),
            mode=p.mode,
            place=p.place,
            seats=p.seats,
            seats_taken=taken,
            waiting=waiting,
            eligibility=p.eligibility,
            description=p.description,
            sessions=[
                SessionPublic(
                    title=s.title, starts_at=s.starts_at, ends_at=s.ends_at, timezone=s.timezone
                )
                for s in p.sessions
            ],
            priority=PriorityPublic(
                rank=standing.rank, option=standing.option, proposal=standing.reference
            )
            if standing
            else None,
        )


class EnrolmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    member: str = Field(description="Your member's handle")
    participant: str = Field(max_length=200)
    email: str = Field(max_length=254)


class EnrolmentPublic(BaseModel):
    id: int
    programme: int
    member: int
    participant: str
    status: str
    attended: int

    @classmethod
    def of(cls, e: Enrolment) -> EnrolmentPublic:
        return cls(
            id=e.id,
            programme=e.programme_id,
            member=e.member_id,
            participant=e.participant,
            status=e.status,
            attended=e.attended,
        )


class Attendance(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sessions_attended: int


class Certificate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    record: dict[str, Any]
    signature: str


class CommitmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    member: str | None = Field(
        default=None, description="Your member; none for the organisation (secretariat)"
    )
    title: str = Field(max_length=300)
    metric: str
    target: float
    start: date
    due: date


class CommitmentPublic(BaseModel):
    id: int
    member: int | None
    title: str
    metric: str
    target: float
    value: float
    share: float
    elapsed: float
    status: str
    start: date
    due: date


class ItemCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    member: str
    side: str = Field(description="need or offer")
    kind: str = Field(description="compute, dataset, expert, seats or funding")
    title: str = Field(max_length=200)
    quantity: float
    languages: list[str] = Field(default_factory=list)
    timezone: str
    details: dict[str, Any] = Field(default_factory=dict)


class ItemPublic(BaseModel):
    id: int
    side: str
    kind: str
    member: int
    title: str
    quantity: float
    languages: list[str]
    timezone: str
    details: dict[str, Any]
    status: str

    @classmethod
    def of(cls, i: ExchangeItem) -> ItemPublic:
        return cls(
            id=i.id,
            side=i.side,
            kind=i.kind,
            member=i.member_id,
            title=i.title,
            quantity=i.quantity,
            languages=list(i.languages),
            timezone=i.timezone,
            details=dict(i.details),
            status=i.status,
        )


class MatchPublic(BaseModel):
    id: int
    need: int
    offer: int
    quantity: float
    benefit: float
    reasons: dict[str, Any]
    status: str
    need_answer: str
    offer_answer: str

    @classmethod
    def of(cls, m: Match) -> MatchPublic:
        return cls(
            id=m.id,
            need=m.need_id,
            offer=m.offer_id,
            quantity=m.quantity,
            benefit=m.benefit,
            reasons=dict(m.reasons),
            status=m.status,
            need_answer=m.need_answer,
            offer_answer=m.offer_answer,
        )


class MatchAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    member: str
    accept: bool


class RankedOption(BaseModel):
    option: str
    rank: int
    area: str | None = Field(description="The Action Plan area the option names, if any")


class RankingPublic(BaseModel):
    """The ranking of priorities that orders the programme list."""

    proposal: str
    title: str
    method: str
    ranked: list[RankedOption]
    log_index: int
    recorded_at: datetime

    @classmethod
    def of(cls, r: PriorityRanking) -> RankingPublic:
        return cls(
            proposal=r.reference,
            title=r.title,
            method=r.method,
            ranked=[RankedOption.model_validate(o) for o in r.ranked],
            log_index=r.log_index,
            recorded_at=r.recorded_at,
        )
