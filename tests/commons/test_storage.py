"""One set of storage tests, run against every backend: a folder and a real S3 server."""

from __future__ import annotations

from pathlib import Path

import pytest

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


def test_short_or_missing_objects_are_refused(backend) -> None:
    backend.put_file(NAME, _scratch_file(backend, b"0123456789"))
    with pytest.raises(StoreUnavailable):
        backend.read(NAME, 5, 100)
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
