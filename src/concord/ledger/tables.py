"""Stored form of the log: entries, complete-subtree nodes, the frontier, signed heads."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, LargeBinary, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from concord.db import Base, UTCDateTime


class LogEntry(Base):
    """One entry: its canonical JSON bytes and RFC 9162 leaf hash, at a fixed index."""

    __tablename__ = "ledger_entries"

    index: Mapped[int] = mapped_column("idx", BigInteger, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(64), index=True)
    member_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    body: Mapped[bytes] = mapped_column(LargeBinary)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class LogNode(Base):
    """The hash of a complete subtree of 2^level leaves starting at leaf index << level.

    Written once, when its last leaf is appended, in the same transaction; never changed.
    Level 0 (the leaves) lives in `ledger_entries`.
    """

    __tablename__ = "ledger_nodes"

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    index: Mapped[int] = mapped_column("idx", BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class LogState(Base):
    """A single row: the tree size and its frontier (the roots of the complete subtrees of
    the current tree, largest first). Locking it orders appends across hub processes."""

    __tablename__ = "ledger_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    frontier: Mapped[bytes] = mapped_column(LargeBinary, default=b"")


class SignedHead(Base):
    """A signed tree head: the hub's Ed25519 signature over size, root and time."""

    __tablename__ = "ledger_heads"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime())
    signature: Mapped[str] = mapped_column(String(120))
