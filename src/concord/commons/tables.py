"""Stored form of the commons: chunks, blobs, repositories, revisions, refs, downloads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from concord.db import Base, UTCDateTime


class Chunk(Base):
    """A content-defined chunk, named by its BLAKE3 hash, stored at an offset of a pack."""

    __tablename__ = "commons_chunks"

    hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    pack: Mapped[str] = mapped_column(String(64))
    offset: Mapped[int] = mapped_column(BigInteger)
    length: Mapped[int] = mapped_column(Integer)


class Blob(Base):
    """A file's content: its SHA-256 (the Hub protocol's id), size and ordered chunks."""

    __tablename__ = "commons_blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    # Deferred: a download reads the (large) list once per process, not with every range.
    chunks: Mapped[list[Any]] = mapped_column(JSON, deferred=True)  # [[blake3, length], …]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Repository(Base):
    __tablename__ = "commons_repositories"
    __table_args__ = (UniqueConstraint("kind", "owner", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    owner: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(96))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    licence: Mapped[str] = mapped_column(String(64))
    mirrored_from: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Seen only by the owning member's people and the secretariat (`access.may_see`).
    private: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Secret key (64 hex) of the commitments that name the repository in the public log while
    # it is private (`disclosure.py`); revealed when it becomes public. Never served.
    log_salt: Mapped[str | None] = mapped_column(String(64), nullable=True, default=None)


class Holding(Base):
    """That revisions of a repository hold a blob, and whether one of them holds it ungated.

    Bytes and chunks are addressed by hash, and hashes are public (the log names every
    published file's SHA-256): whoever asks for content by hash gets it only when a repository
    holding it lets them read it (`access.may_read_blob`)."""

    __tablename__ = "commons_holdings"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    repository_id: Mapped[int] = mapped_column(
        ForeignKey("commons_repositories.id"), primary_key=True, index=True
    )
    open: Mapped[bool] = mapped_column(Boolean, default=False)


class Revision(Base):
    """An immutable commit: a file tree, its card, provenance and conformance report."""

    __tablename__ = "commons_revisions"

    sha: Mapped[str] = mapped_column(String(40), primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("commons_repositories.id"), index=True)
    parent: Mapped[str] = mapped_column(String(40), default="")
    message: Mapped[str] = mapped_column(Text, default="")
    files: Mapped[dict[str, Any]] = mapped_column(JSON)  # path → sha256
    card: Mapped[dict[str, Any]] = mapped_column(JSON)
    provenance: Mapped[dict[str, Any]] = mapped_column(JSON)
    conformance: Mapped[dict[str, Any]] = mapped_column(JSON)
    author_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    log_index: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Ref(Base):
    __tablename__ = "commons_refs"

    repository_id: Mapped[int] = mapped_column(
        ForeignKey("commons_repositories.id"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    sha: Mapped[str] = mapped_column(String(40))


class Download(Base):
    """One file download, counted by the requesting member's country (None: anonymous)."""

    __tablename__ = "commons_downloads"

    id: Mapped[int] = mapped_column(primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("commons_repositories.id"), index=True)
    path: Mapped[str] = mapped_column(String(500))
    country: Mapped[str | None] = mapped_column(String(2), nullable=True, index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class Like(Base):
    """A person's like of a repository (the Hub's favourite), counted in its `likes`."""

    __tablename__ = "commons_likes"

    repository_id: Mapped[int] = mapped_column(
        ForeignKey("commons_repositories.id"), primary_key=True
    )
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), primary_key=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AccessRequest(Base):
    """A person's request to read a gated repository, and the owner's decision."""

    __tablename__ = "commons_access_requests"
    __table_args__ = (UniqueConstraint("repository_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("commons_repositories.id"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    status: Mapped[str] = mapped_column(String(10))  # pending, accepted, rejected
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    decided_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
