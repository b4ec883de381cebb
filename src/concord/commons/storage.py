"""Where packs of chunks live: a local folder (the default) or S3-compatible object storage.

A backend keeps immutable named objects. Writes are atomic: the folder backend flushes a
temporary file to disk and renames it; S3 makes an object visible only once its upload has
completed (a multipart upload that dies is never visible). Reads take byte ranges, so serving a
file is a few large sequential reads whichever backend holds it. Neither backend checks
content: the chunk store verifies every chunk it reads against its BLAKE3 name.
"""

from __future__ import annotations

import mmap
import os
import re
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlparse

from concord.errors import N_, Invalid, Unavailable

# Object names are made by the chunk store from random hex; anything else is a bug or an attack.
NAME = re.compile(r"^packs/[0-9a-f]{32}\.pack$")
OPEN_PACKS = 32  # read descriptors of packs kept open per process


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

    def view(self, name: str, offset: int, length: int) -> memoryview:
        """The same bytes, without a copy where the backend can (for streaming them out)."""

    def delete(self, name: str) -> None: ...

    def objects(self) -> Iterator[tuple[str, int, float]]:
        """Every stored object's name, size, and the time it was written (epoch seconds)."""

    def probe(self) -> None:
        """Raises StoreUnavailable unless the store can be written now (for /readyz)."""

    def scratch(self) -> Path:
        """A local folder for temporary files (on the store's own file system if it has one)."""


def _probe_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".ready-") as handle:
            handle.write(b"ok")
            os.fsync(handle.fileno())
    except OSError as exc:
        raise StoreUnavailable(reason=f"{folder} is not writable: {exc.strerror}") from exc


def _checked(name: str) -> str:
    if not NAME.match(name):
        raise ValueError(f"bad object name {name!r}")
    return name


class LocalBackend:
    """Objects as files under one folder (`file:///…`)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._files: OrderedDict[str, tuple[int, int]] = OrderedDict()
        self._lock = threading.Lock()
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
        return bytes(self.view(name, offset, length))

    def delete(self, name: str) -> None:
        with self._lock:
            opened = self._files.pop(name, None)
            if opened is not None:
                os.close(opened[0])
        self.path(name).unlink(missing_ok=True)

    def view(self, name: str, offset: int, length: int) -> memoryview:
        """Bytes of a pack mapped from the page cache: no copy into a fresh buffer, which
        (allocated and zeroed by the kernel, copied into, freed) cost half of a download.

        The map covers just this range and is unmapped when the last view of it goes, so a
        process's memory reflects what it is sending, not the packs it has read. Packs never
        change once named (written aside, then renamed), so a mapped range cannot shrink; one
        truncated by hand would crash the reader with SIGBUS, as git's mapped packs would."""
        aligned = offset - offset % mmap.ALLOCATIONGRANULARITY
        # Mapped under the lock: a map holds its own copy of the descriptor, so once made it
        # outlives our closing the descriptor (evicted, or the pack deleted) in another thread.
        with self._lock:
            fd, size = self._open(name)
            if offset + length > size:
                raise StoreUnavailable(reason=f"{name} is shorter than its index says")
            if length == 0:
                return memoryview(b"")
            try:
                mapped = mmap.mmap(
                    fd,
                    length + offset - aligned,
                    flags=mmap.MAP_SHARED,
                    prot=mmap.PROT_READ,
                    offset=aligned,
                )
            except (OSError, ValueError) as exc:
                raise StoreUnavailable(reason=f"{name}: {exc}") from exc
        return memoryview(mapped)[offset - aligned :]

    def _open(self, name: str) -> tuple[int, int]:
        """A read descriptor of the pack and its size, kept for the next range of it (called
        with the lock held)."""
        found = self._files.get(name)
        if found is not None:
            self._files.move_to_end(name)
            return found
        try:
            fd = os.open(self.path(name), os.O_RDONLY)
        except OSError as exc:
            raise StoreUnavailable(reason=f"{name}: {exc.strerror}") from exc
        opened = self._files[name] = (fd, os.fstat(fd).st_size)
        while len(self._files) > OPEN_PACKS:
            os.close(self._files.popitem(last=False)[1][0])
        return opened

    def objects(self) -> Iterator[tuple[str, int, float]]:
        for entry in os.scandir(self.root / "packs"):
            name = f"packs/{entry.name}"
            if NAME.match(name):
                status = entry.stat()
                yield name, status.st_size, status.st_mtime

    def probe(self) -> None:
        _probe_folder(self.root / "incoming")


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

    def view(self, name: str, offset: int, length: int) -> memoryview:
        return memoryview(self.read(name, offset, length))

    def delete(self, name: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.key(name))

    def objects(self) -> Iterator[tuple[str, int, float]]:
        from botocore.exceptions import BotoCoreError, ClientError

        lead = f"{self.prefix}/" if self.prefix else ""
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=f"{lead}packs/"
            )
            for page in pages:
                for item in page.get("Contents", []):
                    name = item["Key"].removeprefix(lead)
                    if NAME.match(name):
                        yield name, int(item["Size"]), item["LastModified"].timestamp()
        except (BotoCoreError, ClientError) as exc:
            raise StoreUnavailable(reason=f"listing {self.bucket}: {exc}") from exc

    def probe(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        # HEAD on the bucket proves the service answers and these credentials reach the bucket,
        # without writing an object on every probe of a load balancer.
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError) as exc:
            raise StoreUnavailable(reason=f"bucket {self.bucket}: {exc}") from exc
        _probe_folder(self._scratch)


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
