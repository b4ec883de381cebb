"""One set of storage tests, run against every backend: a folder and a real S3 server."""

from __future__ import annotations

import time
from pathlib import Path

import blake3
import pytest

from concord.commons.chunks import ChunkStore, sweep
from concord.commons.storage import (
    BadStorageUrl,
    LocalBackend,
    S3Backend,
    StoreUnavailable,
    open_backend,
)

NAME = "packs/" + "ab" * 16 + ".pack"


@pytest.fixture(params=["file", "s3"])
def backend(request, tmp_path: Path):
    if request.param == "file":
        return open_backend((tmp_path / "store").as_uri())
    bucket = request.getfixturevalue("s3_bucket")
    endpoint = request.getfixturevalue("moto_endpoint")
    return open_backend(f"s3://{bucket}/hub-a?endpoint={endpoint}", scratch=tmp_path / "scratch")


def _scratch_file(backend, data: bytes) -> Path:
    path = backend.scratch() / ".pack-test"
    path.write_bytes(data)
    return path


def test_put_then_read_ranges(backend) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB
    source = _scratch_file(backend, data)
    backend.put_file(NAME, source)
    assert not source.exists()  # the scratch file is consumed
    assert backend.read(NAME, 0, len(data)) == data
    assert backend.read(NAME, 1000, 5000) == data[1000:6000]
    # Views (memory maps for a folder) start anywhere, not only at a page boundary.
    for offset, length in ((0, len(data)), (1000, 5000), (70_001, 300_000), (len(data) - 1, 1)):
        assert backend.view(NAME, offset, length) == data[offset : offset + length]


def test_short_or_missing_objects_are_refused(backend) -> None:
    backend.put_file(NAME, _scratch_file(backend, b"0123456789"))
    with pytest.raises(StoreUnavailable):
        backend.read(NAME, 5, 100)
    with pytest.raises(StoreUnavailable):
        backend.view(NAME, 5, 100)  # never a map past the end (that would be SIGBUS)
    with pytest.raises(StoreUnavailable):
        backend.read("packs/" + "cd" * 16 + ".pack", 0, 1)
    backend.delete(NAME)
    with pytest.raises(StoreUnavailable):
        backend.read(NAME, 0, 1)


def test_names_other_than_packs_are_refused(backend) -> None:
    with pytest.raises(ValueError):
        backend.read("../../etc/passwd", 0, 1)


def test_storage_urls(tmp_path: Path, s3_bucket: str, moto_endpoint: str) -> None:
    assert isinstance(open_backend((tmp_path / "a").as_uri()), LocalBackend)
    # The endpoint may come in the URL or from CONCORD_S3_ENDPOINT_URL; the URL wins.
    in_url = open_backend(f"s3://{s3_bucket}/p?endpoint={moto_endpoint}&region=eu-west-1")
    from_setting = open_backend(f"s3://{s3_bucket}/p", moto_endpoint)
    for found in (in_url, from_setting):
        assert isinstance(found, S3Backend)
        assert found.client.meta.endpoint_url == moto_endpoint
        assert found.key(NAME) == f"p/{NAME}"
    for bad in ("ftp://host/x", "s3:///no-bucket", "bucket/prefix"):
        with pytest.raises(BadStorageUrl):
            open_backend(bad)


def test_objects_are_listed_with_size_and_age(backend) -> None:
    before = time.time() - 120  # S3 servers stamp whole seconds, and clocks differ a little
    backend.put_file(NAME, _scratch_file(backend, b"0123456789"))
    listed = list(backend.objects())
    assert [(name, size) for name, size, _when in listed] == [(NAME, 10)]
    assert before < listed[0][2] < time.time() + 120


def test_probe_says_whether_the_store_can_be_used(
    backend, tmp_path: Path, s3_bucket: str, moto_endpoint: str
) -> None:
    backend.probe()  # a fresh store is ready
    gone = open_backend(f"s3://no-such-{s3_bucket}/p?endpoint={moto_endpoint}")
    with pytest.raises(StoreUnavailable, match="no-such-"):
        gone.probe()
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the store's folder should be")
    with pytest.raises(StoreUnavailable):
        local = LocalBackend(tmp_path / "ok")
        local.root = blocked
        local.probe()


def test_sweep_removes_only_unreferenced_old_packs_and_scratch(backend, sessions) -> None:
    """What a killed push leaves (a stored pack its rolled-back transaction never named, a
    scratch file) goes; the packs that rows name stay, and so does anything young."""
    store = ChunkStore.__new__(ChunkStore)  # over the fixture's backend, whichever it is
    store.backend = backend
    kept = b"kept " * 50_000
    orphan = b"orphan " * 50_000
    with sessions() as session:
        writer = store.writer(session)
        writer.add(blake3.blake3(kept).hexdigest(), kept)
        writer.seal()
        session.commit()
    with sessions() as session:
        writer = store.writer(session)
        writer.add(blake3.blake3(orphan).hexdigest(), orphan)
        writer.seal()
        session.rollback()  # the process "died" before its commit
    stale = backend.scratch() / ".upload-stale"
    stale.write_bytes(b"x" * 1000)
    assert len(list(backend.objects())) == 2
    with sessions() as session:
        young = sweep(session, store, older_than_s=3600)
    assert (young.packs, young.scratch_files) == (0, 0)
    assert stale.exists()
    with sessions() as session:
        swept = sweep(session, store, older_than_s=-60)  # everything counts as old
        assert (swept.packs, swept.scratch_files) == (1, 1)
        assert swept.bytes == len(orphan) + 1000
        assert store.read_chunk(session, blake3.blake3(kept).hexdigest()) == kept
    assert len(list(backend.objects())) == 1 and not stale.exists()
