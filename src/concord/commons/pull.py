"""`concord pull`: downloads that survive anything, for thin and unreliable links.

Every file is a list of content-defined chunks. The client fetches byte ranges covering the
chunks it lacks, several at once over keep-alive connections (one large range per connection:
each request costs the hub milliseconds), each range streaming through a reused 4 MiB window.
Each chunk is verified against its BLAKE3 name the moment its last byte
arrives, written at its place in `.concord/partial/<sha256>.part`, and then noted in a journal
beside it. After `kill -9` at any point the next run re-verifies the journalled chunks and
fetches only the rest: at most the chunks in flight are fetched twice. Chunks of files this
folder already holds (an earlier revision) are copied locally, so a new revision fetches only
its new chunks.

The chunk list itself is checked, before anything is written, against the BLAKE3 Merkle root
that the revision's log entry records beside the file's SHA-256 (`roots.py`): chunks verified
by name, in a list verified by the logged root, are the logged file, so no SHA-256 pass over
the bytes is needed (docs/commons.md, "Verifying a pull"). A revision logged before roots were
recorded has none: then SHA-256 is computed on a thread of its own as the verified prefix of
the file grows, the file is moved under its name only when it matches, and the report names
the files checked that way.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import struct
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import blake3

from concord.commons.formats import check_path
from concord.commons.roots import chunk_root
from concord.errors import N_, Conflict, HubUnreachable, Invalid, RemoteError

STATE = ".concord"
RANGE = 32 * 1024 * 1024  # the largest range asked for at once
WINDOW = 4 * 1024 * 1024  # bytes of a range a download thread holds at a time
RECEIVE = 1024 * 1024  # bytes read from the socket per call when no rate limit applies
INDEX = struct.Struct("<I")  # one journal entry: the index of a chunk written and verified


class BudgetExceeded(Conflict):
    code = "pull.budget"
    message = N_(
        "Stopped before exceeding the budget of {budget} bytes; {missing} bytes are still "
        "missing. Run again with a larger --budget to finish (nothing fetched is lost)."
    )


class CorruptDownload(Invalid):
    code = "pull.corrupt"
    message = N_("{path} does not match its SHA-256 after download; the hub may be faulty.")


class ChunkListMismatch(Invalid):
    code = "pull.chunk_list"
    message = N_(
        "The chunk list the hub sent for {path} does not match the root its log entry "
        "records; nothing was written. The hub may be faulty or tampered with."
    )


class CorruptChunk(Invalid):
    code = "pull.corrupt_chunk"
    message = N_(
        "A chunk of {path} does not match its BLAKE3 name; the hub or the link is faulty. The "
        "chunks verified so far are kept: run the pull again."
    )


@dataclass
class PullReport:
    revision: str
    files: list[str] = field(default_factory=list)
    downloaded_bytes: int = 0
    fetched_chunks: int = 0
    reused_chunks: int = 0  # kept from an interrupted run or copied from files held here
    resumed_bytes: int = 0  # bytes of chunks kept from an interrupted run
    # Files whose revision's log entry records no chunk root (logged before roots were, or
    # mirrored): their bytes were checked by the whole-file SHA-256 instead.
    sha256_checked: list[str] = field(default_factory=list)


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


def parse_size(text: str | None) -> int | None:
    """`100k`, `2M`, `1.5G` (bytes; k = 1000) → int."""
    if not text:
        return None
    units = {"k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
    value = text.strip().lower().removesuffix("b").removesuffix("/s")
    factor = units.get(value[-1:], 1)
    number = value[:-1] if value[-1:] in units else value
    return int(float(number) * factor)


@dataclass
class Remote:
    """One file of the revision: its chunks' names, lengths and places in the file, and the
    logged root of that list (None for a revision logged without roots)."""

    path: str
    size: int
    sha256: str
    names: list[str]
    lengths: list[int]
    starts: list[int]
    root: str | None = None

    @classmethod
    def of(cls, entry: dict[str, Any]) -> Remote:
        """The file as the revision detail describes it; its chunk list checked against the
        logged root here, before any byte of it is fetched or written."""
        names, lengths, starts = [], [], []
        position = 0
        for name, length in entry["chunks"]:
            names.append(name)
            lengths.append(int(length))
            starts.append(position)
            position += int(length)
        if position != entry["size"]:
            raise CorruptDownload(path=entry["path"])
        root = entry.get("chunk_root")
        if root is not None and chunk_root(zip(names, lengths, strict=True)) != root:
            raise ChunkListMismatch(path=entry["path"])
        return cls(entry["path"], int(entry["size"]), entry["sha256"], names, lengths, starts, root)


class Puller:
    """Pulls the files of one revision into a folder."""

    def __init__(
        self,
        hub: str,
        repo: str,
        kind: str,
        to: Path,
        token: str | None,
        workers: int,
        limit_rate: int | None,
        budget: int | None,
        progress: Callable[[int], None] | None,
    ) -> None:
        self.hub = hub.rstrip("/")
        self.repo = repo
        self.kind = kind
        self.to = to
        self.state = to / STATE
        self.auth = {"Authorization": f"Bearer {token}"} if token else {}
        self.workers = max(1, workers)
        self.bucket = RateLimit(limit_rate)
        self.budget = budget
        self.spent = 0
        self.progress = progress or (lambda n: None)
        self.lock = threading.Lock()
        self.local = threading.local()
        self.connections: list[http.client.HTTPConnection] = []
        self.report = PullReport(revision="")

    # --- what this folder holds

    def _held(self) -> dict[str, Any]:
        path = self.state / "held.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def _is_current(self, item: Remote) -> bool:
        record = self._held().get(item.path)
        target = self.to / item.path
        if record is None or record["sha256"] != item.sha256 or not target.exists():
            return False
        stat = target.stat()
        return bool(stat.st_size == item.size and stat.st_mtime_ns == record["mtime"])

    def _record(self, item: Remote) -> None:
        held = self._held()
        held[item.path] = {
            "sha256": item.sha256,
            "mtime": (self.to / item.path).stat().st_mtime_ns,
        }
        _atomic_write(self.state / "lists" / f"{item.sha256}.json", _listing(item))
        _atomic_write(self.state / "held.json", json.dumps(held, indent=1).encode())

    def _local_chunks(self) -> dict[str, tuple[Path, int, int]]:
        """Chunks inside files held here, unchanged since they were pulled."""
        found: dict[str, tuple[Path, int, int]] = {}
        for path, record in self._held().items():
            target = self.to / path
            listing = self.state / "lists" / f"{record['sha256']}.json"
            if not target.exists() or not listing.exists():
                continue
            if target.stat().st_mtime_ns != record["mtime"]:
                continue
            position = 0
            for name, length in json.loads(listing.read_text()):
                found.setdefault(name, (target, position, length))
                position += length
        return found

    # --- pulling

    def run(self, files: list[Remote]) -> PullReport:
        (self.state / "partial").mkdir(parents=True, exist_ok=True)
        local = self._local_chunks()
        try:
            for position, item in enumerate(files):
                if self._is_current(item):
                    self.report.files.append(item.path)
                    continue
                self._pull_file(item, local, files[position + 1 :])
                self.report.files.append(item.path)
        finally:
            self.close()
        return self.report

    def close(self) -> None:
        for connection in self.connections:
            connection.close()

    def _pull_file(
        self, item: Remote, local: dict[str, tuple[Path, int, int]], later: list[Remote]
    ) -> None:
        part = self.state / "partial" / f"{item.sha256}.part"
        journal = self.state / "partial" / f"{item.sha256}.journal"
        fd = os.open(part, os.O_RDWR | os.O_CREAT, 0o644)
        # Chunks verified by name in a list verified by the logged root are the file: the
        # SHA-256 pass is needed only where the log records no root.
        hasher: PrefixHasher | Verified = (
            PrefixHasher(fd, item) if item.root is None else Verified()
        )
        try:
            if os.fstat(fd).st_size != item.size:
                os.ftruncate(fd, item.size)
            have = self._resume(fd, item, journal, hasher)
            with journal.open("ab", buffering=0) as log:
                todo = [i for i in range(len(item.names)) if i not in have]
                todo = self._copy_local(fd, log, item, todo, local, hasher)
                self._download(fd, log, item, todo, hasher, later)
            if isinstance(hasher, PrefixHasher):
                if hasher.result() != item.sha256:
                    journal.unlink(missing_ok=True)
                    raise CorruptDownload(path=item.path)
                self.report.sha256_checked.append(item.path)
            target = self.to / item.path
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(part, target)
            journal.unlink(missing_ok=True)
            self._record(item)
        finally:
            hasher.stop()
            with contextlib.suppress(OSError):
                os.close(fd)

    def _resume(
        self, fd: int, item: Remote, journal: Path, hasher: PrefixHasher | Verified
    ) -> set[int]:
        """Chunks journalled by an earlier run, verified again from the partial file."""
        have: set[int] = set()
        if not journal.exists():
            return have
        raw = journal.read_bytes()
        for (index,) in INDEX.iter_unpack(raw[: len(raw) - len(raw) % INDEX.size]):
            if index >= len(item.names) or index in have:
                continue
            data = os.pread(fd, item.lengths[index], item.starts[index])
            if blake3.blake3(data).hexdigest() == item.names[index]:
                have.add(index)
                hasher.mark(index)
        resumed = sum(item.lengths[i] for i in have)
        self.report.reused_chunks += len(have)
        self.report.resumed_bytes += resumed
        self.progress(resumed)
        return have

    def _written(self, log: Any, index: int, hasher: PrefixHasher | Verified) -> None:
        self._written_run(log, index, index + 1, hasher)

    def _written_run(
        self, log: Any, first: int, stop: int, hasher: PrefixHasher | Verified
    ) -> None:
        """Journals chunks first..stop-1, already on disk: one write for all of them."""
        with self.lock:
            log.write(b"".join(INDEX.pack(i) for i in range(first, stop)))
        hasher.mark(first, stop)

    def _copy_local(
        self,
        fd: int,
        log: Any,
        item: Remote,
        todo: list[int],
        local: dict[str, tuple[Path, int, int]],
        hasher: PrefixHasher | Verified,
    ) -> list[int]:
        remaining = []
        handles: dict[Path, int] = {}
        try:
            for index in todo:
                source = local.get(item.names[index])
                if source is None:
                    remaining.append(index)
                    continue
                path, offset, length = source
                if path not in handles:
                    handles[path] = os.open(path, os.O_RDONLY)
                data = os.pread(handles[path], length, offset)
                if blake3.blake3(data).hexdigest() != item.names[index]:
                    remaining.append(index)  # changed since it was pulled: fetch it
                    continue
                os.pwrite(fd, data, item.starts[index])
                self._written(log, index, hasher)
                self.report.reused_chunks += 1
                self.progress(length)
        finally:
            for handle in handles.values():
                os.close(handle)
        return remaining

    def _ranges(self, item: Remote, todo: list[int]) -> list[list[int]]:
        """Runs of consecutive missing chunks, each asked for as one range.

        Few and large: every request costs the hub 4-6 ms of CPU (authentication, access,
        chunk lookup), 0.3 s per GiB at 16 MiB ranges; a range streams through a window of
        `WINDOW` bytes whatever its length. One range per connection, then, up to `RANGE`
        (longer ones raised the hub's peak memory: 381 against 341 MiB pulling 512 MiB),
        unless a budget or a rate limit wants progress in smaller steps (a budget is spent a
        range at a time)."""
        missing = sum(item.lengths[i] for i in todo)
        steps = 4 if self.budget is not None or self.bucket.rate else 1
        limit = min(RANGE, max(1024 * 1024, -(-missing // (self.workers * steps))))
        runs: list[list[int]] = []
        size = 0
        for index in todo:
            if runs and runs[-1][-1] == index - 1 and size + item.lengths[index] <= limit:
                runs[-1].append(index)
                size += item.lengths[index]
            else:
                runs.append([index])
                size = item.lengths[index]
        return runs

    def _download(
        self,
        fd: int,
        log: Any,
        item: Remote,
        todo: list[int],
        hasher: PrefixHasher | Verified,
        later: list[Remote],
    ) -> None:
        if not todo:
            return
        runs = self._ranges(item, todo)
        allowed = runs
        if self.budget is not None:
            allowed = []
            for run in runs:
                size = sum(item.lengths[i] for i in run)
                if self.spent + size > self.budget:
                    break
                self.spent += size
                allowed.append(run)
        url = (
            f"{urlsplit(self.hub).path}/api/commons/content/{item.sha256}"
            f"?repo={quote(self.repo)}&kind={self.kind}&path={quote(item.path)}"
        )
        with ThreadPoolExecutor(self.workers) as pool:
            for done in pool.map(lambda run: self._fetch(fd, log, item, url, run, hasher), allowed):
                del done
        if len(allowed) < len(runs):
            missing = sum(item.lengths[i] for run in runs[len(allowed) :] for i in run)
            missing += sum(f.size for f in later)
            raise BudgetExceeded(budget=self.budget, missing=missing)

    def _connection(self) -> http.client.HTTPConnection:
        """This thread's keep-alive connection (http.client reads straight into a buffer)."""
        connection: http.client.HTTPConnection | None = getattr(self.local, "connection", None)
        if connection is None:
            parsed = urlsplit(self.hub)
            kind = (
                http.client.HTTPSConnection
                if parsed.scheme == "https"
                else http.client.HTTPConnection
            )
            connection = kind(parsed.hostname or "127.0.0.1", parsed.port, timeout=120)
            self.local.connection = connection
            with self.lock:
                self.connections.append(connection)
        return connection

    def get_json(self, path: str) -> Any:
        """A JSON answer of the hub, or its coded error."""
        response = self._request("GET", f"{urlsplit(self.hub).path}{path}", self.auth)
        body = response.read()
        if response.status != 200:
            raise _remote_error(response.status, body)
        return json.loads(body)

    def _request(self, method: str, url: str, headers: dict[str, str]) -> http.client.HTTPResponse:
        for attempt in range(2):
            connection = self._connection()
            try:
                connection.request(method, url, headers=headers)
                return connection.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                # A keep-alive connection the hub closed meanwhile: one fresh try.
                self._drop_connection()
                if attempt:
                    raise HubUnreachable(
                        url=self.hub, reason=str(exc) or type(exc).__name__
                    ) from exc
        raise AssertionError("unreachable")

    def _drop_connection(self) -> None:
        connection = getattr(self.local, "connection", None)
        if connection is not None:
            connection.close()
        self.local.connection = None

    def _fetch(
        self,
        fd: int,
        log: Any,
        item: Remote,
        url: str,
        run: list[int],
        hasher: PrefixHasher | Verified,
    ) -> None:
        """Fetches one range; writes each chunk as soon as it has arrived and is verified."""
        first, last = run[0], run[-1]
        start = item.starts[first]
        end = item.starts[last] + item.lengths[last]
        headers = {"Range": f"bytes={start}-{end - 1}", **self.auth}
        response = self._request("GET", url, headers)
        if response.status != 206:
            body = response.read()
            raise _remote_error(response.status, body)
        # One window per thread, reused: chunks are verified and written out as they complete,
        # and the unfinished one moves to the window's start, so a range of any length needs
        # only `WINDOW` bytes (room for the longest chunk and one read).
        room = max(WINDOW, max(item.lengths[i] for i in run) + RECEIVE)
        buffer: bytearray | None = getattr(self.local, "buffer", None)
        if buffer is None or len(buffer) < room:
            buffer = self.local.buffer = bytearray(room)
        view = memoryview(buffer)
        step = (
            RECEIVE
            if not self.bucket.rate
            else max(16 * 1024, min(RECEIVE, self.bucket.rate // 20))
        )
        base = start  # the file offset of view[0]
        filled = 0
        index = first
        try:
            while index <= last:
                want = min(step, len(view) - filled, end - base - filled)
                n = response.readinto(view[filled : filled + want]) if want > 0 else 0
                if not n:
                    break
                self.bucket.take(n)
                filled += n
                with self.lock:
                    self.report.downloaded_bytes += n
                self.progress(n)
                # Every chunk that has fully arrived is verified; then they go to disk and to
                # the journal together, one write each, not one per 64 KiB chunk.
                ready = index
                while ready <= last and item.starts[ready] + item.lengths[ready] - base <= filled:
                    offset = item.starts[ready] - base
                    piece = view[offset : offset + item.lengths[ready]]
                    if blake3.blake3(piece).hexdigest() != item.names[ready]:
                        raise CorruptChunk(path=item.path)
                    ready += 1
                if ready > index:
                    begin = item.starts[index] - base
                    finish = item.starts[ready - 1] + item.lengths[ready - 1] - base
                    os.pwrite(fd, view[begin:finish], item.starts[index])
                    self._written_run(log, index, ready, hasher)
                    with self.lock:
                        self.report.fetched_chunks += ready - index
                    index = ready
                    tail = filled - finish  # part of the next chunk: under its length
                    view[:tail] = bytes(view[finish:filled])
                    base += finish
                    filled = tail
        except (OSError, http.client.HTTPException) as exc:
            self._drop_connection()
            raise HubUnreachable(url=self.hub, reason=str(exc) or type(exc).__name__) from exc
        if index <= last:
            self._drop_connection()
            raise HubUnreachable(url=self.hub, reason="the answer ended early")


class Verified:
    """Stands in for `PrefixHasher` where the chunk list is verified by its logged root."""

    def mark(self, first: int, stop: int | None = None) -> None:
        pass

    def stop(self) -> None:
        pass


class PrefixHasher:
    """SHA-256 of a file assembled out of order, computed as its verified prefix grows.

    It runs on a thread of its own beside the downloads (hashlib releases the GIL), reading
    the prefix back from the page cache, so the final check costs almost nothing more.
    """

    BLOCK = 8 * 1024 * 1024

    def __init__(self, fd: int, item: Remote) -> None:
        self.fd = fd
        self.item = item
        self.done = bytearray(len(item.names))
        self.condition = threading.Condition()
        self.sha = hashlib.sha256()
        self.next = 0
        self.stopped = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def mark(self, first: int, stop: int | None = None) -> None:
        """Chunks first..stop-1 (or just `first`) are on disk and verified."""
        stop = first + 1 if stop is None else stop
        with self.condition:
            self.done[first:stop] = b"\x01" * (stop - first)
            if first <= self.next < stop:
                self.condition.notify()

    def _run(self) -> None:
        count = len(self.done)
        while self.next < count:
            with self.condition:
                while not self.done[self.next] and not self.stopped:
                    self.condition.wait()
                if self.stopped:
                    return
                last, size = self.next, 0
                while last < count and self.done[last] and size < self.BLOCK:
                    size += self.item.lengths[last]
                    last += 1
            self.sha.update(os.pread(self.fd, size, self.item.starts[self.next]))
            self.next = last

    def result(self) -> str:
        self.thread.join()
        return self.sha.hexdigest()

    def stop(self) -> None:
        with self.condition:
            self.stopped = True
            self.condition.notify()
        self.thread.join()


def _remote_error(status: int, body: bytes) -> RemoteError:
    try:
        error = json.loads(body)["error"]
        return RemoteError(str(error["code"]), status, str(error["message"]))
    except (ValueError, KeyError, TypeError):
        return RemoteError("http", status, f"HTTP {status}: {body[:200]!r}")


def _listing(item: Remote) -> bytes:
    return json.dumps(
        [[n, length] for n, length in zip(item.names, item.lengths, strict=True)]
    ).encode()


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


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
    puller = Puller(hub, repo, kind, to, token, workers, limit_rate, budget, progress)
    # Over the puller's own kind of connection: an httpx client costs 50 ms to set up.
    try:
        info = puller.get_json(f"/api/commons/repos/{kind}/{repo}/revisions/{quote(revision)}")
    except BaseException:
        puller.close()
        raise
    wanted = []
    for entry in info["files"]:
        if only is not None and entry["path"] not in only:
            continue
        check_path(entry["path"])
        if entry["path"].split("/")[0] == STATE:
            raise CorruptDownload(path=entry["path"])
        wanted.append(Remote.of(entry))
    puller.report.revision = info["revision"]
    if total:
        total(sum(f.size for f in wanted if not puller._is_current(f)))
    return puller.run(wanted)
