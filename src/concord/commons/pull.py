"""`concord pull`: downloads that survive anything, for thin and unreliable links.

Every file is a list of content-defined chunks. The client asks for byte ranges covering the
chunks it lacks, in parallel, and writes each chunk to a local cache (atomically, verified by
its BLAKE3 name) the moment its last byte arrives. A killed process loses at most the chunk in
flight per connection; the next run fetches only what is missing, and a new revision of a
repository fetches only its new chunks. Files are assembled from the cache and checked against
their SHA-256 before they appear under their name.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import blake3
import httpx

from concord.client import HubClient
from concord.commons.formats import check_path
from concord.errors import N_, Conflict, HubUnreachable, Invalid

SPAN = 2 * 1024 * 1024


class BudgetExceeded(Conflict):
    code = "pull.budget"
    message = N_(
        "Stopped before exceeding the budget of {budget} bytes; {missing} bytes are still "
        "missing. Run again with a larger --budget to finish (nothing fetched is lost)."
    )


class CorruptDownload(Invalid):
    code = "pull.corrupt"
    message = N_("{path} does not match its SHA-256 after download; the hub may be faulty.")


@dataclass
class PullReport:
    revision: str
    files: list[str] = field(default_factory=list)
    downloaded_bytes: int = 0
    fetched_chunks: int = 0
    reused_chunks: int = 0


class RateLimit:
    """A token bucket shared by the download threads."""

    def __init__(self, bytes_per_s: int | None) -> None:
        self.rate = bytes_per_s
        self.lock = threading.Lock()
        self.allowance = float(bytes_per_s or 0)
        self.last = time.monotonic()

    def take(self, n: int) -> None:
        if not self.rate:
            return
        with self.lock:
            now = time.monotonic()
            self.allowance = min(float(self.rate), self.allowance + (now - self.last) * self.rate)
            self.last = now
            self.allowance -= n
            wait = -self.allowance / self.rate if self.allowance < 0 else 0.0
        if wait > 0:
            time.sleep(wait)


class ChunkCache:
    """Verified chunks on local disk, one file each, written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, name: str) -> Path:
        return self.root / name[:2] / name

    def has(self, name: str) -> bool:
        return self.path(name).exists()

    def put(self, name: str, data: bytes) -> None:
        if blake3.blake3(data).hexdigest() != name:
            raise CorruptDownload(path=name)
        target = self.path(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=".part-")
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.replace(temporary, target)

    def get(self, name: str) -> bytes:
        return self.path(name).read_bytes()


def parse_size(text: str | None) -> int | None:
    """`100k`, `2M`, `1.5G` (bytes; k = 1000) → int."""
    if not text:
        return None
    units = {"k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
    value = text.strip().lower().removesuffix("b").removesuffix("/s")
    factor = units.get(value[-1:], 1)
    number = value[:-1] if value[-1:] in units else value
    return int(float(number) * factor)


def pull(
    hub: str,
    repo: str,
    *,
    kind: str = "model",
    revision: str = "main",
    only: list[str] | None = None,
    to: Path,
    token: str | None = None,
    workers: int = 4,
    limit_rate: int | None = None,
    budget: int | None = None,
    progress: Callable[[int], None] | None = None,
    total: Callable[[int], None] | None = None,
) -> PullReport:
    """Downloads `repo` (or the files in `only`) at `revision` into the folder `to`."""
    with HubClient(hub, token) as client:
        info = client.get(f"/api/commons/repos/{kind}/{repo}/revisions/{revision}")
    report = PullReport(revision=info["revision"])
    cache = ChunkCache(to / ".concord" / "chunks")
    wanted = [f for f in info["files"] if only is None or f["path"] in only]
    spans: list[tuple[dict[str, Any], int, list[tuple[str, int]]]] = []
    missing_bytes = 0
    for f in wanted:
        check_path(f["path"])
        target = to / f["path"]
        if _done(to, f):
            report.files.append(f["path"])
            continue
        offset, run_start = 0, 0
        run: list[tuple[str, int]] = []
        for name, length in f["chunks"]:
            if cache.has(name):
                report.reused_chunks += 1
                if run:
                    spans.append((f, run_start, run))
                    run = []
            else:
                if not run:
                    run_start = offset
                run.append((name, length))
                missing_bytes += length
                if sum(n for _h, n in run) >= SPAN:
                    spans.append((f, run_start, run))
                    run = []
            offset += length
        if run:
            spans.append((f, run_start, run))
        del target
    if total:
        total(missing_bytes)
    if budget is not None and missing_bytes > budget:
        # Fetch whole spans while they fit: what is fetched is kept for the next run.
        allowed, kept = 0, []
        for span in spans:
            size = sum(n for _h, n in span[2])
            if allowed + size > budget:
                break
            allowed += size
            kept.append(span)
        spans_to_fetch = kept
    else:
        spans_to_fetch = spans
    bucket = RateLimit(limit_rate)
    lock = threading.Lock()
    seen = set()

    def fetch(span: tuple[dict[str, Any], int, list[tuple[str, int]]]) -> None:
        f, start, chunks = span
        length = sum(n for _h, n in chunks)
        url = (
            f"{hub.rstrip('/')}/api/commons/content/{f['sha256']}?repo={repo}&kind={kind}"
            f"&path={f['path']}"
        )
        headers = {"Range": f"bytes={start}-{start + length - 1}"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            with (
                httpx.Client(timeout=60) as http,
                http.stream("GET", url, headers=headers) as response,
            ):
                if response.status_code not in (200, 206):
                    raise HubUnreachable(url=hub, reason=f"HTTP {response.status_code}")
                buffer = bytearray()
                index = 0
                for piece in response.iter_bytes(256 * 1024):
                    bucket.take(len(piece))
                    buffer += piece
                    with lock:
                        report.downloaded_bytes += len(piece)
                    if progress:
                        progress(len(piece))
                    while index < len(chunks) and len(buffer) >= chunks[index][1]:
                        name, size = chunks[index]
                        data = bytes(buffer[:size])
                        del buffer[:size]
                        if name not in seen:
                            cache.put(name, data)
                            with lock:
                                seen.add(name)
                                report.fetched_chunks += 1
                        index += 1
        except httpx.HTTPError as exc:
            raise HubUnreachable(url=hub, reason=str(exc) or type(exc).__name__) from exc

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for future in [pool.submit(fetch, span) for span in spans_to_fetch]:
            future.result()
    if len(spans_to_fetch) < len(spans):
        still = missing_bytes - sum(sum(n for _h, n in s[2]) for s in spans_to_fetch)
        raise BudgetExceeded(budget=budget, missing=still)
    for f in wanted:
        if f["path"] in report.files:
            continue
        _assemble(to, f, cache)
        report.files.append(f["path"])
    return report


def _marker(to: Path, f: dict[str, Any]) -> Path:
    return to / ".concord" / "done" / f["sha256"]


def _done(to: Path, f: dict[str, Any]) -> bool:
    target = to / f["path"]
    return target.exists() and target.stat().st_size == f["size"] and _marker(to, f).exists()


def _assemble(to: Path, f: dict[str, Any], cache: ChunkCache) -> None:
    target = to / f["path"]
    target.parent.mkdir(parents=True, exist_ok=True)
    sha = hashlib.sha256()
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=".assemble-")
    try:
        with os.fdopen(descriptor, "wb") as out:
            for name, _length in f["chunks"]:
                data = cache.get(name)
                sha.update(data)
                out.write(data)
        if sha.hexdigest() != f["sha256"]:
            raise CorruptDownload(path=f["path"])
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    marker = _marker(to, f)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(f["path"])
