"""`concord push` and `concord pull` against a real hub on 127.0.0.1: resumption after
`kill -9`, new revisions fetching only new chunks, budgets, and the HF client agreeing."""

from __future__ import annotations

import hashlib
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from safetensors.numpy import save
from typer.testing import CliRunner

from concord.cli import app
from concord.commons.pull import BudgetExceeded, pull

runner = CliRunner()


def _model(seed: int, tensors: int = 24, side: int = 256) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {f"t{i}": rng.standard_normal((side, side)).astype(np.float32) for i in range(tensors)}


def _push(live_server, actor, folder: Path, repo: str = "kenya/asr") -> None:
    r = runner.invoke(
        app,
        [
            "push",
            repo,
            str(folder),
            "--hub",
            live_server,
            "--token",
            actor.token,
            "--licence",
            "mit",
        ],
    )
    assert r.exit_code == 0, r.output


def test_push_then_pull_and_delta_for_a_new_revision(live_server, make, tmp_path) -> None:
    kenya = make.delegate("kenya", "KE")
    src = tmp_path / "src"
    src.mkdir()
    tensors = _model(1)
    (src / "model.safetensors").write_bytes(save(tensors))
    (src / "README.md").write_text("---\nlicense: mit\n---\n# ASR\n")
    _push(live_server, kenya, src)
    dest = tmp_path / "dest"
    first = pull(live_server, "kenya/asr", to=dest)
    assert (dest / "model.safetensors").read_bytes() == (src / "model.safetensors").read_bytes()
    assert first.downloaded_bytes >= (src / "model.safetensors").stat().st_size
    tensors["t5"] = tensors["t5"] * 1.5  # a new revision changes one tensor in 24
    (src / "model.safetensors").write_bytes(save(tensors))
    _push(live_server, kenya, src)
    second = pull(live_server, "kenya/asr", to=dest)
    size = (src / "model.safetensors").stat().st_size
    assert (dest / "model.safetensors").read_bytes() == (src / "model.safetensors").read_bytes()
    assert second.downloaded_bytes < 0.2 * size
    assert second.reused_chunks > 0


def test_budget_stops_before_exceeding_and_keeps_progress(live_server, make, tmp_path) -> None:
    kenya = make.delegate("kenya", "KE")
    src = tmp_path / "src"
    src.mkdir()
    (src / "model.safetensors").write_bytes(save(_model(2, tensors=40)))
    _push(live_server, kenya, src)
    dest = tmp_path / "dest"
    with pytest.raises(BudgetExceeded):
        pull(live_server, "kenya/asr", to=dest, budget=4_000_000)
    assert not (dest / "model.safetensors").exists()
    report = pull(live_server, "kenya/asr", to=dest)
    assert report.reused_chunks > 0
    assert (dest / "model.safetensors").read_bytes() == (src / "model.safetensors").read_bytes()


def test_kill_9_then_resume_downloads_only_what_is_missing(live_server, make, tmp_path) -> None:
    kenya = make.delegate("kenya", "KE")
    src = tmp_path / "src"
    src.mkdir()
    data = save(_model(3, tensors=48))  # ~12.6 MB
    (src / "model.safetensors").write_bytes(data)
    _push(live_server, kenya, src)
    dest = tmp_path / "dest"
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from concord.cli import main; main()",
            "pull",
            "kenya/asr",
            "--hub",
            live_server,
            "--to",
            str(dest),
            "--limit-rate",
            "3M",
            "--workers",
            "2",
            "--quiet",
        ],
        env={**os.environ},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # What an interrupted pull keeps: the chunks its journal names (each written, verified).
    detail = httpx.get(f"{live_server}/api/commons/repos/model/kenya/asr/revisions/main").json()
    lengths = [n for _name, n in detail["files"][0]["chunks"]]
    partial = dest / ".concord" / "partial"

    def kept_bytes() -> int:
        kept = 0
        for journal in partial.glob("*.journal"):
            raw = journal.read_bytes()
            indices = {i for (i,) in struct.iter_unpack("<I", raw[: len(raw) - len(raw) % 4])}
            kept += sum(lengths[i] for i in indices)
        return kept

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and kept_bytes() <= len(data) // 3:
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    kept = kept_bytes()
    assert 0 < kept < len(data)
    report = pull(live_server, "kenya/asr", to=dest)
    assert report.downloaded_bytes == len(data) - kept  # nothing fetched twice
    assert (
        hashlib.sha256((dest / "model.safetensors").read_bytes()).hexdigest()
        == hashlib.sha256(data).hexdigest()
    )


def test_unknown_repository_or_unreachable_hub_give_coded_errors(live_server, tmp_path) -> None:
    from tests.conftest import free_port

    from concord.errors import HubUnreachable, RemoteError

    with pytest.raises(RemoteError) as unknown:
        pull(live_server, "kenya/nothing-here", to=tmp_path / "a")
    assert unknown.value.status == 404 and unknown.value.code.startswith("commons.")
    with pytest.raises(HubUnreachable):
        pull(f"http://127.0.0.1:{free_port()}", "kenya/asr", to=tmp_path / "b")
