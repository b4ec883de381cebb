"""Stored form of programmes, sessions, enrolments, completions, commitments and the exchange."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, Float, ForeignKey, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from concord.db import Base, UTCDateTime


class Programme(Base):
    """A workshop, seminar or course under one area of the Action Plan."""

    __tablename__ = "programmes"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    area: Mapped[str] = mapped_column(String(40), index=True)
    host_member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    languages: Mapped[list[Any]] = mapped_column(JSON)
    mode: Mapped[str] = mapped_column(String(20))
    place: Mapped[str] = mapped_column(String(200), default="")
    seats: Mapped[int]
    eligibility: Mapped[str] = mapped_column(String(64), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    sessions: Mapped[list[ProgrammeSession]] = relationship(
        back_populates="programme", order_by="ProgrammeSession.starts_at"
    )


class ProgrammeSession(Base):
    __tablename__ = "programme_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    programme_id: Mapped[int] = mapped_column(ForeignKey("programmes.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    timezone: Mapped[str] = mapped_column(String(64))

    programme: Mapped[Programme] = relationship(back_populates="sessions")


class Enrolment(Base):
    """A participant a member's delegate enrolled; `waiting` rows queue by id."""

    __tablename__ = "enrolments"

    id: Mapped[int] = mapped_column(primary_key=True)
    programme_id: Mapped[int] = mapped_column(ForeignKey("programmes.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    participant: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254))
    status: Mapped[str] = mapped_column(String(20), index=True)
    priority: Mapped[int] = mapped_column(default=0)
    attended: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Completion(Base):
    """A completion record signed by the hub: verifiable offline with the hub's public key."""

    __tablename__ = "completions"

    id: Mapped[int] = mapped_column(primary_key=True)
    enrolment_id: Mapped[int] = mapped_column(ForeignKey("enrolments.id"), unique=True)
    record: Mapped[bytes] = mapped_column(LargeBinary)
    signature: Mapped[str] = mapped_column(String(120))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Commitment(Base):
    """A promise of something countable by a date; progress is computed from the records."""

    __tablename__ = "commitments"

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), nullable=True)
    title: Mapped[str] = mapped_column(String(300))
    metric: Mapped[str] = mapped_column(String(40))
    target: Mapped[float] = mapped_column(Float)
    start: Mapped[date] = mapped_column(Date)
    due: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ExchangeItem(Base):
    """A need or an offer: compute, a dataset, experts, training seats or funding."""

    __tablename__ = "exchange_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    side: Mapped[str] = mapped_column(String(10), index=True)
    kind: Mapped[str] = mapped_column(String(20), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[float] = mapped_column(Float)
    languages: Mapped[list[Any]] = mapped_column(JSON)
    timezone: Mapped[str] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default="open", index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Match(Base):
    """A proposed pair with the reasons for it; accepted when both sides accept."""

    __tablename__ = "matches"

    id: Mapped[int] = mapped_column(primary_key=True)
    need_id: Mapped[int] = mapped_column(ForeignKey("exchange_items.id"), index=True)
    offer_id: Mapped[int] = mapped_column(ForeignKey("exchange_items.id"), index=True)
    quantity: Mapped[float] = mapped_column(Float)
    benefit: Mapped[float] = mapped_column(Float)
    reasons: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default="proposed", index=True)
    need_answer: Mapped[str] = mapped_column(String(10), default="")
    offer_answer: Mapped[str] = mapped_column(String(10), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class PriorityRanking(Base):
    """The ranked options of an adopted governance decision that name Action Plan areas or
    programmes: the latest one orders the programme list. Governance's ids are copied, not
    foreign keys: capacity reads governance through its events, never its tables."""

    __tablename__ = "priority_rankings"

    id: Mapped[int] = mapped_column(primary_key=True)
    decision_id: Mapped[int] = mapped_column(unique=True)
    proposal_id: Mapped[int]
    reference: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(300))
    method: Mapped[str] = mapped_column(String(20))
    # [{"option", "rank", "area" | None}], in the order decided
    ranked: Mapped[list[Any]] = mapped_column(JSON)
    log_index: Mapped[int]
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
