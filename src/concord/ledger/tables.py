"""Stored form of the log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, LargeBinary, String
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


class LogState(Base):
    """A single row holding the tree size; locking it orders appends across hub processes."""

    __tablename__ = "ledger_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger, default=0)


__all__ = ["ForeignKey", "LogEntry", "LogState"]
