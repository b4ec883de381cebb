"""`concord pull` checks chunk lists against the BLAKE3 Merkle root logged beside each file's
SHA-256, and skips the SHA-256 pass: a hub that lies about a list, or a link that changes a
chunk, is refused; a resumed pull still verifies; a revision logged without roots falls back.

The lying hub is a real HTTP proxy on 127.0.0.1 in front of the real hub, changing what it
forwards."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import blake3
import httpx
import numpy as np
import pytest
from safetensors.numpy import save
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from concord.cli import app
from concord.commons import repositories
from concord.commons.pull import BudgetExceeded, ChunkListMismatch, CorruptChunk, pull
from concord.commons.roots import LEAF, NODE, chunk_root, leaf_hash
from concord.ledger.tables import LogEntry

runner = CliRunner()
LICENCE = ("--licence", "mit")
DETAIL = "/api/commons/repos/model/kenya/asr/revisions/main"


def _model(seed: int, tensors: int = 24) -> bytes:
    rng = np.random.default_rng(seed)
    return save(
        {f"t{i}": rng.standard_normal((256, 256)).astype(np.float32) for i in range(tensors)}
    )


def _push(live_server: str, actor: Any, folder: Path, repo: str) -> None:
    r = runner.invoke(
        app,
        ["push", repo, str(folder), "--hub", live_server, "--token", actor.token, *LICENCE],
    )
    assert r.exit_code == 0, r.output


def _published(live_server: str, make: Any, tmp_path: Path, seed: int, repo: str) -> bytes:
    kenya = getattr(make, "_kenya", None) or make.delegate("kenya", "KE")
    make._kenya = kenya
    folder = tmp_path / f"src-{seed}"
    folder.mkdir()
    data = _model(seed)
    (folder / "model.safetensors").write_bytes(data)
    _push(live_server, kenya, folder, repo)
    return data


Rewrite = Callable[[str, int, dict[str, str], bytes], bytes]


@pytest.fixture
def lying_hub(live_server: str) -> Iterator[Callable[[Rewrite], str]]:
    """A proxy to the hub that passes every answer through `rewrite(path, status, headers,
    body)` before sending it on."""
    servers: list[ThreadingHTTPServer] = []

    def start(rewrite: Rewrite) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                answer = httpx.get(live_server + self.path, headers=headers)
                body = rewrite(self.path, answer.status_code, dict(answer.headers), answer.content)
                self.send_response(answer.status_code)
                for name in ("Content-Type", "Content-Range", "ETag"):
                    if name in answer.headers:
                        self.send_header(name, answer.headers[name])
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _partials(folder: Path) -> list[Path]:
    return list((folder / ".concord" / "partial").glob("*.part"))


def test_the_root_is_rfc_6962_shaped_with_lengths_bound_in() -> None:
    # Prepare: five chunks (an odd count, so a node is carried up)
    chunks = [(blake3.blake3(bytes([i])).hexdigest(), 1000 + i) for i in range(5)]
    leaves = [leaf_hash(n, length) for n, length in chunks]

    def node(left: bytes, right: bytes) -> bytes:
        return blake3.blake3(NODE + left + right).digest()

    # Execute
    root = chunk_root(chunks)
    # Assert: MTH(D[5]) = node(MTH(D[0:4]), MTH(D[4:5])); leaves carry name and length
    expected = node(node(node(leaves[0], leaves[1]), node(leaves[2], leaves[3])), leaves[4])
    assert root == expected.hex()
    assert (
        leaves[0]
        == blake3.blake3(LEAF + bytes.fromhex(chunks[0][0]) + (1000).to_bytes(8, "little")).digest()
    )
    moved = [(chunks[0][0], 999), (chunks[1][0], 1002), *chunks[2:]]  # same bytes, other cut
    assert chunk_root(moved) != root
    assert chunk_root([]) == blake3.blake3(b"").hexdigest()


def test_the_log_entry_binds_each_files_root_to_its_sha256(
    live_server: str, make: Any, tmp_path: Path, db: Session
) -> None:
    # Prepare / Execute
    data = _published(live_server, make, tmp_path, 1, "kenya/asr")
    # Assert: the entry records the root of the stored list; the detail serves that root
    body = db.scalars(select(LogEntry.body).where(LogEntry.kind == "commons.published")).one()
    content = json.loads(body)["content"]
    detail = httpx.get(live_server + DETAIL).json()
    (served,) = detail["files"]
    assert content["files"] == {"model.safetensors": hashlib.sha256(data).hexdigest()}
    assert content["chunk_roots"] == {"model.safetensors": chunk_root(served["chunks"])}
    assert served["chunk_root"] == content["chunk_roots"]["model.safetensors"]


def test_another_files_chunk_list_is_refused_and_nothing_is_written(
    live_server: str, make: Any, tmp_path: Path, lying_hub: Callable[[Rewrite], str]
) -> None:
    # Prepare: a hub that serves, under kenya/asr, another published file's size, SHA-256
    # and chunk list (consistent with each other and with the bytes it would send)
    _published(live_server, make, tmp_path, 1, "kenya/asr")
    _published(live_server, make, tmp_path, 2, "kenya/other")
    other = httpx.get(f"{live_server}/api/commons/repos/model/kenya/other/revisions/main").json()

    def swap(path: str, status: int, headers: dict[str, str], body: bytes) -> bytes:
        if not path.startswith(DETAIL):
            return body
        detail = json.loads(body)
        for key in ("size", "sha256", "chunks"):
            detail["files"][0][key] = other["files"][0][key]
        return json.dumps(detail).encode()

    hub = lying_hub(swap)
    dest = tmp_path / "dest"
    # Execute
    with pytest.raises(ChunkListMismatch) as refused:
        pull(hub, "kenya/asr", to=dest)
    # Assert: a clear, coded refusal; no file, no partial file
    assert refused.value.code == "pull.chunk_list"
    assert "model.safetensors" in str(refused.value)
    assert not (dest / "model.safetensors").exists()
    assert _partials(dest) == []


def test_a_changed_chunk_is_refused(
    live_server: str, make: Any, tmp_path: Path, lying_hub: Callable[[Rewrite], str]
) -> None:
    # Prepare: a link that flips one byte in the middle of every range it carries
    _published(live_server, make, tmp_path, 1, "kenya/asr")

    def flip(path: str, status: int, headers: dict[str, str], body: bytes) -> bytes:
        if status != 206:
            return body
        middle = len(body) // 2
        return body[:middle] + bytes([body[middle] ^ 1]) + body[middle + 1 :]

    hub = lying_hub(flip)
    dest = tmp_path / "dest"
    # Execute
    with pytest.raises(CorruptChunk) as refused:
        pull(hub, "kenya/asr", to=dest, workers=1)
    # Assert
    assert refused.value.code == "pull.corrupt_chunk"
    assert not (dest / "model.safetensors").exists()


def test_a_resumed_pull_verifies_kept_chunks_again(
    live_server: str, make: Any, tmp_path: Path
) -> None:
    # Prepare: a pull stopped by its budget, then one of its kept chunks damaged on disk
    data = _published(live_server, make, tmp_path, 1, "kenya/asr")
    dest = tmp_path / "dest"
    with pytest.raises(BudgetExceeded):
        pull(live_server, "kenya/asr", to=dest, budget=3_000_000, workers=1)
    (part,) = _partials(dest)
    raw = bytearray(part.read_bytes())
    raw[1000] ^= 0xFF  # inside the first chunk, which the stopped pull fetched
    part.write_bytes(bytes(raw))
    first_chunk = httpx.get(live_server + DETAIL).json()["files"][0]["chunks"][0][1]
    # Execute
    report = pull(live_server, "kenya/asr", to=dest)
    # Assert: the damaged chunk was fetched again, the file is right, by root alone
    assert (dest / "model.safetensors").read_bytes() == data
    assert report.reused_chunks > 0
    assert report.downloaded_bytes == len(data) - report.resumed_bytes
    assert report.downloaded_bytes >= len(data) - 3_000_000 + first_chunk
    assert report.sha256_checked == []


def test_a_revision_logged_without_roots_falls_back_to_sha256_and_says_so(
    live_server: str,
    make: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    lying_hub: Callable[[Rewrite], str],
) -> None:
    # Prepare: a revision published by a hub that did not yet log roots
    monkeypatch.setattr(repositories, "chunk_roots", lambda *args: {})
    data = _published(live_server, make, tmp_path, 1, "kenya/asr")
    detail = httpx.get(live_server + DETAIL).json()
    assert "chunk_root" not in detail["files"][0]
    # Execute
    report = pull(live_server, "kenya/asr", to=tmp_path / "api")
    said = runner.invoke(
        app, ["pull", "kenya/asr", "--hub", live_server, "--to", str(tmp_path / "cli")]
    )
    # Assert: pulled, checked by SHA-256, and said so
    assert (tmp_path / "api" / "model.safetensors").read_bytes() == data
    assert report.sha256_checked == ["model.safetensors"]
    assert said.exit_code == 0, said.output
    assert "checked by SHA-256" in said.output


def test_a_full_audit_finds_a_served_chunk_list_that_is_not_the_logged_one(
    live_server: str, make: Any, tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    # Prepare: a publication that audits clean
    from concord.commons import served
    from concord.ledger.audit import ServedDiffers, audit

    _published(live_server, make, tmp_path, 1, "kenya/asr")
    clean = audit(live_server, full=True, state=tmp_path / "clean", checks=[served.check])
    assert clean.full
    # Execute: the stored chunk list is changed in the database, the log left alone
    with sessions() as session:
        chunks = session.execute(text("SELECT chunks FROM commons_blobs")).scalar_one()
        listed = json.loads(chunks) if isinstance(chunks, str) else chunks
        listed[0], listed[1] = listed[1], listed[0]
        cast = "CAST(:c AS JSON)" if session.bind.dialect.name == "postgresql" else ":c"
        session.execute(
            text(f"UPDATE commons_blobs SET chunks = {cast}"), {"c": json.dumps(listed)}
        )
        session.commit()
    # Assert
    with pytest.raises(ServedDiffers) as differs:
        audit(live_server, full=True, state=tmp_path / "tampered", checks=[served.check])
    assert "chunk_lists" in str(differs.value)


def test_one_connection_asks_for_one_range_streamed_through_its_window(
    live_server: str, make: Any, tmp_path: Path, lying_hub: Callable[[Rewrite], str]
) -> None:
    # Prepare: a file longer than the window (4 MiB), a hub counting the ranges asked for
    data = _published(live_server, make, tmp_path, 1, "kenya/asr")
    assert len(data) > 4 * 1024 * 1024
    asked: list[str] = []

    def count(path: str, status: int, headers: dict[str, str], body: bytes) -> bytes:
        if status == 206:
            asked.append(headers.get("content-range", ""))
        return body

    hub = lying_hub(count)
    # Execute
    report = pull(hub, "kenya/asr", to=tmp_path / "dest", workers=1)
    # Assert: one request for the whole file (each costs the hub milliseconds), bytes right
    assert (tmp_path / "dest" / "model.safetensors").read_bytes() == data
    assert asked == [f"bytes 0-{len(data) - 1}/{len(data)}"]
    assert report.downloaded_bytes == len(data)
