"""Stored form of proposals, amendments, statements and their votes, ballots, decisions and
charter versions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from concord.db import Base, UTCDateTime


class Proposal(Base):
    """A standard, project or resolution on its way from draft to decision."""

    __tablename__ = "governance_proposals"

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(300))
    texts: Mapped[dict[str, Any]] = mapped_column()  # language → text
    sponsor_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    cosponsor_ids: Mapped[list[Any]] = mapped_column(default=list)
    author_person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    status: Mapped[str] = mapped_column(String(20), default="draft")
    # project: the JobSpec; standard: {"blocking": bool, "rules": [...]}; resolution: {}
    body: Mapped[dict[str, Any]] = mapped_column(default=dict)
    public_consultation: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deliberation_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    ballot_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    closes_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # The opinion map is cached here and recomputed when `votes_version` moves past it.
    votes_version: Mapped[int] = mapped_column(default=0)
    map_version: Mapped[int] = mapped_column(default=-1)
    # Deferred: the map of a large deliberation weighs hundreds of kilobytes of JSON, and every
    # request that names the proposal (a vote, a ballot, a page) would decode it; only the
    # map's own cache reads it.
    opinion_map: Mapped[dict[str, Any] | None] = mapped_column(nullable=True, deferred=True)
    # The decision method when not the charter's yes/no rule ({"name": "stv", "options": […],
    # "seats": 3, …}: see `decision_method`); None: the charter rule of the kind.
    method: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    # The texts as proposed: amendments are edits of these (see `redlines`). None: `texts`.
    original_texts: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)


class Amendment(Base):
    __tablename__ = "governance_amendments"

    id: Mapped[int] = mapped_column(primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("governance_proposals.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    language: Mapped[str] = mapped_column(String(8))
    text: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default="proposed")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # when it was put to a ballot of its own: the opening of that ballot's window
    ballot_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # set when the amendment was put to a ballot of its own and closed
    arithmetic: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)


class Statement(Base):
    """A short statement in the deliberation, by a delegate or (in consultation) an observer."""

    __tablename__ = "governance_statements"

    id: Mapped[int] = mapped_column(primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("governance_proposals.id"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), nullable=True)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # the language the author wrote in; translations into the others live in `Translation`
    language: Mapped[str] = mapped_column(String(8), default="en")
    # moderation: the secretariat hides a statement with a reason, it is never deleted
    hidden_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    hidden_reason: Mapped[str] = mapped_column(Text, default="")
    hidden_by: Mapped[int | None] = mapped_column(ForeignKey("people.id"), nullable=True)


class Translation(Base):
    """A proposal's text (statement_id None) or a statement in another of the six languages.

    origin "person" (by `person_id`, a delegate or a translator) or "machine" (the configured
    machine-translation service). One current translation per text and language."""

    __tablename__ = "governance_translations"

    id: Mapped[int] = mapped_column(primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("governance_proposals.id"), index=True)
    statement_id: Mapped[int | None] = mapped_column(
        ForeignKey("governance_statements.id"), nullable=True, index=True
    )
    language: Mapped[str] = mapped_column(String(8))
    text: Mapped[str] = mapped_column(Text)
    origin: Mapped[str] = mapped_column(String(20))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    log_index: Mapped[int] = mapped_column()


class StatementVote(Base):
    """agree (1), disagree (-1) or pass (0); a person's latest vote on a statement."""

    __tablename__ = "governance_statement_votes"
    __table_args__ = (UniqueConstraint("statement_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("governance_proposals.id"), index=True)
    statement_id: Mapped[int] = mapped_column(ForeignKey("governance_statements.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), nullable=True)
    vote: Mapped[int] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Ballot(Base):
    """A member's current ballot on a proposal; earlier ones live in the log."""

    __tablename__ = "governance_ballots"
    __table_args__ = (UniqueConstraint("proposal_id", "member_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("governance_proposals.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    choice: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text, default="")
    nonce: Mapped[str] = mapped_column(String(64), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column()
    signature: Mapped[str] = mapped_column(String(128))
    cast_at: Mapped[datetime] = mapped_column(UTCDateTime())
    log_index: Mapped[int] = mapped_column()


class AmendmentBallot(Base):
    """A member's current ballot on an amendment put to a ballot of its own."""

    __tablename__ = "governance_amendment_ballots"
    __table_args__ = (UniqueConstraint("amendment_id", "member_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    amendment_id: Mapped[int] = mapped_column(ForeignKey("governance_amendments.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    choice: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text, default="")
    nonce: Mapped[str] = mapped_column(String(64), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column()
    signature: Mapped[str] = mapped_column(String(128))
    cast_at: Mapped[datetime] = mapped_column(UTCDateTime())
    log_index: Mapped[int] = mapped_column()


class Proxy(Base):
    """A member's signed delegation of its vote to another member: on one proposal, or on every
    ballot open between `starts_at` and `ends_at`. Revocable until the ballot closes."""

    __tablename__ = "governance_proxies"

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    holder_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    proposal: Mapped[str | None] = mapped_column(String(32), nullable=True)
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    nonce: Mapped[str] = mapped_column(String(64), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column()
    signature: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    log_index: Mapped[int] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class BallotNonce(Base):
    """Every nonce a member has signed a counted ballot with, kept after the ballot row moves on,
    so that no earlier ballot can be sent again (on a proposal or an amendment)."""

    __tablename__ = "governance_ballot_nonces"
    __table_args__ = (UniqueConstraint("member_id", "nonce"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    nonce: Mapped[str] = mapped_column(String(64))
    log_index: Mapped[int] = mapped_column()


class Decision(Base):
    __tablename__ = "governance_decisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("governance_proposals.id"), unique=True)
    outcome: Mapped[str] = mapped_column(String(20))
    rule: Mapped[str] = mapped_column(String(64))
    arithmetic: Mapped[dict[str, Any]] = mapped_column()
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime())
    log_index: Mapped[int] = mapped_column()


class CharterVersion(Base):
    __tablename__ = "governance_charter_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(unique=True)
    text: Mapped[str] = mapped_column(Text)
    note: Mapped[str] = mapped_column(Text, default="")
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    log_index: Mapped[int] = mapped_column()
