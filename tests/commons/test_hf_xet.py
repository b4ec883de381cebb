"""With `hf_xet` installed and nothing set, `huggingface_hub` uploads files through Xet (it
never asks the hub which protocol to use): the hub receives Xet, so `hf upload` and
`HfApi.upload_file` work as they do against the Hub, through the same gate as `concord push`."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError

from concord.commons.tables import Blob

from .conftest import safetensors_bytes

HF = Path(sys.executable).parent / "hf"


@pytest.fixture
def xet_client(tmp_path, monkeypatch) -> dict[str, str]:
    """The client as a new user has it: hf_xet installed, no HF_HUB_DISABLE_XET."""
    import hf_xet  # noqa: F401  (the test means nothing without it)
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_DISABLE_XET", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_DISABLE_XET"}
    return env


def test_hf_upload_cli_with_xet_installed(
    live_server, make, xet_client, tmp_path, sessions
) -> None:
    kenya = make.delegate("kenya", "KE")
    api = HfApi(endpoint=live_server, token=kenya.token)
    api.create_repo("kenya/xet")
    folder = tmp_path / "model"
    folder.mkdir()
    weights = safetensors_bytes(7, size=700)  # 2 MB: several chunks, compressed or not
    (folder / "model.safetensors").write_bytes(weights)
    (folder / "README.md").write_text("---\nlicense: apache-2.0\n---\n# Xet\n")

    done = subprocess.run(
        [str(HF), "upload", "kenya/xet", str(folder), ".", "--token", kenya.token],
        env={**xet_client, "HF_ENDPOINT": live_server},
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(api.list_repo_files("kenya/xet")) == ["README.md", "model.safetensors"]
    path = hf_hub_download("kenya/xet", "model.safetensors", endpoint=live_server)
    assert Path(path).read_bytes() == weights
    with sessions() as db:
        blob = db.get(Blob, hashlib.sha256(weights).hexdigest())
        assert blob is not None and len(blob.chunks) > 1  # in the chunk store, as a push is


def test_upload_file_by_path_with_xet_installed(live_server, make, xet_client, tmp_path) -> None:
    kenya = make.delegate("kenya", "KE")
    api = HfApi(endpoint=live_server, token=kenya.token)
    api.create_repo("kenya/paths")
    api.upload_file(
        path_or_fileobj=b"---\nlicense: mit\n---\n", path_in_repo="README.md", repo_id="kenya/paths"
    )
    text = tmp_path / "notes.txt"
    text.write_text("habari " * 40_000)  # 280 kB of text: compressible, sent through Xet
    api.upload_file(path_or_fileobj=str(text), path_in_repo="notes.txt", repo_id="kenya/paths")
    pickle = tmp_path / "w.bin"
    pickle.write_bytes(b"\x80\x04K\x01." * 20_000)

    with pytest.raises(HfHubHTTPError) as unsafe:  # the same gate as `concord push`
        api.upload_file(path_or_fileobj=str(pickle), path_in_repo="w.txt", repo_id="kenya/paths")

    assert unsafe.value.response.headers["X-Error-Code"] == "commons.unsafe_format"
    path = hf_hub_download("kenya/paths", "notes.txt", endpoint=live_server)
    assert Path(path).read_text() == text.read_text()


def test_the_xet_endpoints_refuse_strangers_and_broken_objects(client, make) -> None:
    kenya = make.delegate("kenya", "KE")
    ghana = make.delegate("ghana", "GH")
    created = client.post(
        "/api/repos/create", json={"name": "x", "type": "model"}, headers=kenya.headers
    )
    assert created.status_code == 200, created.text
    stranger = client.get("/api/models/kenya/x/xet-write-token/main", headers=ghana.headers)
    assert stranger.status_code == 403  # a token only for the owner's delegates
    token = client.get("/api/models/kenya/x/xet-write-token/main", headers=kenya.headers).json()
    xorb = "/api/commons/xet/v1/xorbs/default/" + "ab" * 32

    forged = client.post(xorb, content=b"\0" * 16, headers={"Authorization": "Bearer xet_a.b"})
    broken = client.post(
        xorb, content=b"XETBLOB", headers={"Authorization": f"Bearer {token['accessToken']}"}
    )
    # A shard naming a xorb never sent: header (tag, version 2, no footer), one file, one term.
    shard = bytes(32) + (2).to_bytes(8, "little") + bytes(8)
    shard += bytes(32) + (1 << 30).to_bytes(4, "little") + (1).to_bytes(4, "little") + bytes(8)
    shard += b"\x01" * 32 + bytes(8) + (0).to_bytes(4, "little") + (1).to_bytes(4, "little")
    shard += b"\x02" * 32 + bytes(16) + b"\xff" * 32 + bytes(16)
    unknown = client.post(
        "/api/commons/xet/v1/shards",
        content=shard,
        headers={"Authorization": f"Bearer {token['accessToken']}"},
    )

    assert forged.status_code == 401 and forged.json()["error"]["code"] == "commons.xet_bad_token"
    assert broken.status_code == 422 and broken.json()["error"]["code"] == "commons.xet_bad_object"
    assert unknown.status_code == 422, unknown.text
    assert "not uploaded" in unknown.json()["error"]["message"]


def test_a_compressed_chunk_cannot_expand_past_its_declared_size(client, make) -> None:
    """LZ4 reaches 255:1: a xorb chunk whose header declares 1 KiB but whose body expands to
    64 MiB is refused while decoding, never held in memory (the size bounds the output)."""
    # Prepare: one chunk header (version 0, stored size, scheme 1 = LZ4, declared size)
    import tracemalloc

    import lz4.block
    import lz4.frame

    from concord.commons.hub_protocol import xet

    kenya = make.delegate("kenya", "KE")
    created = client.post(
        "/api/repos/create", json={"name": "x", "type": "model"}, headers=kenya.headers
    )
    assert created.status_code == 200, created.text
    token = client.get("/api/models/kenya/x/xet-write-token/main", headers=kenya.headers).json()
    bombs = [
        lz4.frame.compress(b"\0" * (64 << 20)),
        lz4.block.compress(b"\0" * (64 << 20), store_size=False),
    ]
    good = b"concord " * 128

    def xorb(body: bytes, size: int) -> bytes:
        header = bytes([0]) + len(body).to_bytes(3, "little") + bytes([1])
        return header + size.to_bytes(3, "little") + body

    # Execute
    answers = [
        client.post(
            "/api/commons/xet/v1/xorbs/default/" + f"{n:02x}" * 32,
            content=xorb(bomb, 1024),
            headers={"Authorization": f"Bearer {token['accessToken']}"},
        )
        for n, bomb in enumerate(bombs)
    ]

    # Assert: both refused with the coded error, without ever holding the expanded bytes; an
    # honest chunk decodes to its bytes
    for answer in answers:
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["code"] == "commons.xet_bad_object"
    for bomb in bombs:
        tracemalloc.start()
        with pytest.raises(xet.BadXetObject):
            xet.chunks_of(xorb(bomb, 1024))
        _now, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak < 4 << 20, f"decoding took {peak:,} bytes"
    frame = lz4.frame.compress(good)
    assert xet.chunks_of(xorb(frame, len(good))) == [good]


def test_rebuilding_a_file_holds_no_write_lock(
    live_server, make, xet_client, tmp_path, database_url, monkeypatch
) -> None:
    """A shard's files are rebuilt and hashed outside any transaction: a 1 GiB upload held
    SQLite's write lock while it did so, and the round ticker failed "database is locked"."""
    if not database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL has no database-wide write lock; the hazard is SQLite's")
    # Prepare: note, at each xorb read, whether another writer could begin
    import sqlite3

    from concord.commons.hub_protocol import xet

    seen: list[bool] = []
    read = xet._read_chunks

    def watched(*args: object) -> bytes:
        other = sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=0)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.rollback()
            seen.append(True)
        except sqlite3.OperationalError:  # "database is locked"
            seen.append(False)
        finally:
            other.close()
        return read(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(xet, "_read_chunks", watched)
    kenya = make.delegate("kenya", "KE")
    api = HfApi(endpoint=live_server, token=kenya.token)
    api.create_repo("kenya/lock")
    api.upload_file(
        path_or_fileobj=b"---\nlicense: mit\n---\n", path_in_repo="README.md", repo_id="kenya/lock"
    )
    text = tmp_path / "notes.txt"
    text.write_text("habari " * 40_000)

    # Execute
    api.upload_file(path_or_fileobj=str(text), path_in_repo="notes.txt", repo_id="kenya/lock")

    # Assert
    assert seen and all(seen), seen
