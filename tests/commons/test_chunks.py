"""The block-wise cutter agrees with FastCDC over the whole buffer, and hashes as it reads."""

from __future__ import annotations

import hashlib
import io
import os

import pytest

from concord.commons import chunks


@pytest.mark.parametrize("size", [0, 1, 1000, chunks.BLOCK, 3 * chunks.BLOCK + 12_345])
def test_cutting_in_blocks_gives_the_chunks_of_the_whole(size: int) -> None:
    data = os.urandom(size)
    whole = [(p.offset, p.length) for p in chunks._cutter.cut_buf(data)] if size else []
    digest = chunks._Sha256()
    pieces = [(offset, bytes(piece)) for offset, piece in chunks._pieces(io.BytesIO(data), digest)]
    assert [(offset, len(piece)) for offset, piece in pieces] == whole
    assert all(data[offset : offset + len(piece)] == piece for offset, piece in pieces)
    assert digest.result() == hashlib.sha256(data).hexdigest()
