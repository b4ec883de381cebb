"""Stored form of members, blocs, people, tokens, browser sessions and keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from concord.db import Base, UTCDateTime


class Member(Base):
    """A country delegation or an institution attached to a country."""

    __tablename__ = "members"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    country_code: Mapped[str] = mapped_column(String(2), index=True)
    status: Mapped[str] = mapped_column(String(20), default="active")
    admitted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    suspended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    history: Mapped[list[MemberStatusChange]] = relationship(
        back_populates="member", order_by="MemberStatusChange.id"
    )


class MemberStatusChange(Base):
    """Admission, suspension, reinstatement and withdrawal, with their dates and reasons."""

    __tablename__ = "member_status_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    action: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str] = mapped_column(Text, default="")
    log_index: Mapped[int | None] = mapped_column(nullable=True)

    member: Mapped[Member] = relationship(back_populates="history")


class CustomBloc(Base):
    """A named set of members that the charter can refer to, beyond the built-in blocs."""

    __tablename__ = "custom_blocs"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")


class CustomBlocMember(Base):
    __tablename__ = "custom_bloc_members"
    __table_args__ = (UniqueConstraint("bloc_id", "member_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    bloc_id: Mapped[int] = mapped_column(ForeignKey("custom_blocs.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))


class Person(Base):
    """Someone who acts on the hub: secretariat staff, a member's delegate, or an observer."""

    __tablename__ = "people"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    active: Mapped[bool] = mapped_column(default=True)

    member: Mapped[Member | None] = relationship()


class ApiToken(Base):
    """An API token: only its SHA-256 is kept; the prefix finds the row without a scan."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    label: Mapped[str] = mapped_column(String(100), default="")
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    digest: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    person: Mapped[Person] = relationship()


class BrowserSession(Base):
    """A signed-in browser; stored in the database so any hub process can serve it.

    It names the token it was opened with, so that revoking the token (or removing the
    person, or suspending the member) ends it too: a browser never outlives its credential.
    """

    __tablename__ = "browser_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    digest: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())

    person: Mapped[Person] = relationship()
    token: Mapped[ApiToken] = relationship()


class MemberKey(Base):
    """The public half of a member's Ed25519 key; the private half never reaches the hub."""

    __tablename__ = "member_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
