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


def test_a_list_under_check_is_never_cached(sessions, settings, tmp_path) -> None:
    store = chunks.open_store(settings)
    source = tmp_path / "data.bin"
    source.write_bytes(os.urandom(300_000))
    with sessions() as db:
        blob = store.ingest(db, source)
        db.commit()
        true_list = [name for name, _n in blob.chunks]
        # What a mirror checks before recording: a false list under the same SHA-256.
        false = chunks.Blob(sha256=blob.sha256, size=blob.size, chunks=[["0" * 64, blob.size]])
        assert chunks._listing(false)[0] == ["0" * 64]
        assert chunks._listing(blob)[0] == true_list
        assert b"".join(store.stream(db, blob)) == source.read_bytes()
