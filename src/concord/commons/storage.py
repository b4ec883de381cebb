"""Where packs of chunks live: a local folder (the default) or S3-compatible object storage.

A backend keeps immutable named objects. Writes are atomic: the folder backend flushes a
temporary file to disk and renames it; S3 makes an object visible only once its upload has
completed (a multipart upload that dies is never visible). Reads take byte ranges, so serving a
file is a few large sequential reads whichever backend holds it. Neither backend checks
content: the chunk store verifies every chunk it reads against its BLAKE3 name.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlparse

from concord.errors import N_, Invalid, Unavailable

# Object names are made by the chunk store from random hex; anything else is a bug or an attack.
NAME = re.compile(r"^packs/[0-9a-f]{32}\.pack$")


class BadStorageUrl(Invalid):
    code = "commons.storage_url"
    message = N_(
        "The storage URL {url} is not supported: use file:///folder or "
        "s3://bucket/prefix?endpoint=https://host:port."
    )


class StoreUnavailable(Unavailable):
    code = "commons.store_unavailable"
    message = N_("The content store cannot be read or written: {reason}")


class Backend(Protocol):
    def put_file(self, name: str, source: Path) -> None:
        """Stores the file at `source` under `name`, atomically; `source` is consumed."""

    def read(self, name: str, offset: int, length: int) -> bytes:
        """Exactly `length` bytes of object `name` from `offset`."""

    def delete(self, name: str) -> None: ...

    def scratch(self) -> Path:
        """A local folder for temporary files (on the store's own file system if it has one)."""


def _checked(name: str) -> str:
    if not NAME.match(name):
        raise ValueError(f"bad object name {name!r}")
    return name


class LocalBackend:
    """Objects as files under one folder (`file:///…`)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "packs").mkdir(parents=True, exist_ok=True)
        (root / "incoming").mkdir(exist_ok=True)

    def path(self, name: str) -> Path:
        return self.root / _checked(name)

    def scratch(self) -> Path:
        return self.root / "incoming"

    def put_file(self, name: str, source: Path) -> None:
        target = self.path(name)
        with source.open("rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(source, target)
        # The rename itself must reach the disk before the caller commits rows that name it.
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def read(self, name: str, offset: int, length: int) -> bytes:
        try:
            descriptor = os.open(self.path(name), os.O_RDONLY)
        except OSError as exc:
            raise StoreUnavailable(reason=f"{name}: {exc.strerror}") from exc
        try:
            data = os.pread(descriptor, length, offset)
        finally:
            os.close(descriptor)
        if len(data) != length:
            raise StoreUnavailable(reason=f"{name} is shorter than its index says")
        return data

    def delete(self, name: str) -> None:
        self.path(name).unlink(missing_ok=True)


class S3Backend:
    """Objects in a bucket under a prefix, on any S3-compatible service (boto3).

    Credentials come from boto3's usual chain (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    `~/.aws`, instance roles); the URL names only where the objects are.
    """

    def __init__(self, bucket: str, prefix: str, endpoint: str, region: str, scratch: Path) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        # Threads of one hub process share the client (boto3 clients are thread-safe); the
        # pool is sized for Uvicorn's worker threads reading packs at once.
        self.client: Any = boto3.client(
            "s3",
            endpoint_url=endpoint or None,
            region_name=region or None,
            config=Config(max_pool_connections=32, retries={"max_attempts": 3, "mode": "standard"}),
        )
        self._scratch = scratch
        scratch.mkdir(parents=True, exist_ok=True)

    def key(self, name: str) -> str:
        _checked(name)
        return f"{self.prefix}/{name}" if self.prefix else name

    def scratch(self) -> Path:
        return self._scratch

    def put_file(self, name: str, source: Path) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            # upload_file switches to a multipart upload for large packs; S3 shows the object
            # only when the last part is committed, so a reader never sees half a pack.
            self.client.upload_file(str(source), self.bucket, self.key(name))
        except (BotoCoreError, ClientError) as exc:
            raise StoreUnavailable(reason=f"{name}: {exc}") from exc
        finally:
            source.unlink(missing_ok=True)

    def read(self, name: str, offset: int, length: int) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self.client.get_object(
                Bucket=self.bucket,
                Key=self.key(name),
                Range=f"bytes={offset}-{offset + length - 1}",
            )
            data: bytes = answer["Body"].read()
        except (BotoCoreError, ClientError) as exc:
            raise StoreUnavailable(reason=f"{name}: {exc}") from exc
        if len(data) != length:
            raise StoreUnavailable(reason=f"{name} is shorter than its index says")
        return data

    def delete(self, name: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.key(name))


_BACKENDS: dict[tuple[str, str, str], Backend] = {}
_LOCK = threading.Lock()


def open_backend(url: str, endpoint: str = "", scratch: Path | None = None) -> Backend:
    """The backend a storage URL names, one per URL and process.

    `file:///folder`, or `s3://bucket/prefix` with the service's address as `?endpoint=…`
    (or `endpoint`, from `CONCORD_S3_ENDPOINT_URL`) and optionally `&region=…`.
    """
    key = (url, endpoint, str(scratch or ""))
    with _LOCK:
        found = _BACKENDS.get(key)
        if found is not None:
            return found
        parsed = urlparse(url)
        backend: Backend
        if parsed.scheme == "file" and parsed.path:
            backend = LocalBackend(Path(unquote(parsed.path)))
        elif parsed.scheme == "s3" and parsed.netloc:
            query = parse_qs(parsed.query)
            backend = S3Backend(
                parsed.netloc,
                unquote(parsed.path),
                query.get("endpoint", [endpoint])[0],
                query.get("region", [""])[0],
                scratch or Path(tempfile.gettempdir()) / "concord-scratch",
            )
        else:
            raise BadStorageUrl(url=url)
        _BACKENDS[key] = backend
        return backend
