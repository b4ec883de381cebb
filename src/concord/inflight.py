"""How many upload bytes each member has in flight, so that no one member fills the disk.

An upload streams to a spool file while it arrives; the bytes are counted against the sender
while the request runs and given back when it ends, whatever the outcome. The count lives in
this process (each hub process guards its own spool folder); the limit is the setting
`member_upload_bytes`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from concord.errors import N_, ConcordError


class UploadQuota(ConcordError):
    code = "request.upload_quota"
    status = 429
    message = N_(
        "You already have {limit} bytes of uploads in progress: wait for them to finish, "
        "then send this one again."
    )


_lock = threading.Lock()
_held: dict[int, int] = {}


@dataclass
class Allowance:
    """One upload's share of its member's quota; `take` counts each piece as it arrives."""

    member_id: int
    limit: int
    taken: int = 0

    def take(self, size: int) -> None:
        with _lock:
            if _held.get(self.member_id, 0) + size > self.limit:
                raise UploadQuota(limit=self.limit)
            _held[self.member_id] = _held.get(self.member_id, 0) + size
            self.taken += size


@contextmanager
def allowance(member_id: int, limit: int) -> Iterator[Allowance]:
    """An allowance for one upload by `member_id`, given back when the upload ends."""
    share = Allowance(member_id, limit)
    try:
        yield share
    finally:
        with _lock:
            left = _held.get(member_id, 0) - share.taken
            if left > 0:
                _held[member_id] = left
            else:
                _held.pop(member_id, None)


def held(member_id: int) -> int:
    """Bytes `member_id` has in flight now (for tests and metrics)."""
    with _lock:
        return _held.get(member_id, 0)
