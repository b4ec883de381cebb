"""Stored form of jobs, nodes, rounds and updates at the hub."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from concord.db import Base, UTCDateTime


class Job(Base):
    __tablename__ = "fed_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    reference: Mapped[str] = mapped_column(String(40), default="")
    proposal_id: Mapped[int | None] = mapped_column(nullable=True)
    decision_id: Mapped[int | None] = mapped_column(nullable=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default="running")
    rounds_done: Mapped[int] = mapped_column(default=0)
    parameters: Mapped[str] = mapped_column(String(300), default="")  # current checkpoint
    digest: Mapped[str] = mapped_column(String(64), default="")
    conformance: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    model_path: Mapped[str] = mapped_column(String(300), default="")
    # The commons repository the final model went to, or why it could not go (see publication).
    model_repo: Mapped[str] = mapped_column(String(300), default="")
    publication: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    server_state: Mapped[str] = mapped_column(String(300), default="")  # optimiser checkpoint
    # Why the job ended when it is not simply "all rounds done" (e.g. the privacy budget).
    finish_reason: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Node(Base):
    __tablename__ = "fed_nodes"

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), unique=True)
    tasks: Mapped[list[Any]] = mapped_column(JSON)
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    key_fingerprint: Mapped[str] = mapped_column(String(64), default="")  # key that registered


class Round(Base):
    __tablename__ = "fed_rounds"
    __table_args__ = (UniqueConstraint("job_id", "number", "attempt"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("fed_jobs.id"), index=True)
    number: Mapped[int]
    attempt: Mapped[int] = mapped_column(default=1)
    status: Mapped[str] = mapped_column(String(20), default="open")
    participants: Mapped[list[Any]] = mapped_column(JSON)  # member ids
    parameters: Mapped[str] = mapped_column(String(300))  # what participants start from
    deadline: Mapped[datetime] = mapped_column(UTCDateTime())
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    examples: Mapped[int] = mapped_column(default=0)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    digest: Mapped[str] = mapped_column(String(64), default="")
    log_index: Mapped[int | None] = mapped_column(nullable=True)
    # Per member, what a robust rule did to its update (`federation.robustness`); [] otherwise.
    robustness: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # What differential privacy this round applied and ε after it (privacy.mechanism).
    privacy: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class Update(Base):
    __tablename__ = "fed_updates"
    __table_args__ = (UniqueConstraint("round_id", "member_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("fed_rounds.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    path: Mapped[str] = mapped_column(String(300))
    sha256: Mapped[str] = mapped_column(String(64))
    examples: Mapped[int]
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    energy_kwh: Mapped[float] = mapped_column(Float, default=0.0)
    emissions_kg: Mapped[float] = mapped_column(Float, default=0.0)
    # The member's own evaluation of the model it received for this round, on its test data
    # (accuracy, loss, num_examples; signed with the update); None when it sent none.
    evaluation: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    signature: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SecAggMessage(Base):
    """One member's message in one SecAgg+ stage of a round: `keys` (its two public keys and
    its weight), `shares` (ciphertexts for its neighbours, unreadable by the hub), `reveal`
    (the shares it opens to unmask). The masked vector itself is an `Update`."""

    __tablename__ = "fed_secagg"
    __table_args__ = (UniqueConstraint("round_id", "member_id", "stage"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("fed_rounds.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    stage: Mapped[str] = mapped_column(String(20))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Campaign(Base):
    """An evaluation campaign: models of the commons evaluated by members' nodes on their own
    test data (`federation.evaluation`). `members` restricts who is asked (a job's final
    model goes to the job's participants); empty, every node with the task is asked."""

    __tablename__ = "fed_campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    # The member that opened it; None when the hub did (a job's final model).
    opened_by: Mapped[int | None] = mapped_column(ForeignKey("members.id"), nullable=True)
    task: Mapped[str] = mapped_column(String(100))
    metric: Mapped[str] = mapped_column(String(100))
    threshold: Mapped[float | None] = mapped_column(Float, nullable=True)
    evaluation_set: Mapped[str] = mapped_column(String(64), default="test")
    status: Mapped[str] = mapped_column(String(20), default="open")
    proposal_id: Mapped[int | None] = mapped_column(nullable=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("fed_jobs.id"), nullable=True)
    members: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class CampaignModel(Base):
    """One model of a campaign: a commons repository at a fixed commit."""

    __tablename__ = "fed_campaign_models"
    __table_args__ = (UniqueConstraint("campaign_id", "repo", "revision"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("fed_campaigns.id"), index=True)
    repo: Mapped[str] = mapped_column(String(300), index=True)
    revision: Mapped[str] = mapped_column(String(64))


class CampaignResult(Base):
    """A member's metrics for one model, with the signed payload they came in (which covers
    every model of the campaign, so that anyone can check the signature again)."""

    __tablename__ = "fed_campaign_results"
    __table_args__ = (UniqueConstraint("model_id", "member_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("fed_campaigns.id"), index=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("fed_campaign_models.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    num_examples: Mapped[int]
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    signature: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CampaignAnswer(Base):
    """A node's signed answer other than results: `declined` (its site's policy refuses the
    campaign's task) or `held` (evaluated; the results wait for its operator's approval)."""

    __tablename__ = "fed_campaign_answers"
    __table_args__ = (UniqueConstraint("campaign_id", "member_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("fed_campaigns.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(String(300), default="")
    signature: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
