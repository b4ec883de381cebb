"""The real `huggingface_hub` client downloads from Concord, for models and datasets."""

from __future__ import annotations

import hashlib
from pathlib import Path

from huggingface_hub import HfApi, hf_hub_download, snapshot_download

from .conftest import CARD, publish, safetensors_bytes


def test_hf_hub_download_and_snapshot(client, live_server, make, hf_home, tmp_path) -> None:
    kenya = make.delegate("kenya", "KE")
    weights = safetensors_bytes(1, size=300)
    publish(
        client,
        kenya,
        "kenya",
        "swahili-asr",
        {
            "model.safetensors": weights,
            "README.md": CARD.encode(),
            "config/config.json": b'{"hidden": 300}',
        },
    )
    api = HfApi(endpoint=live_server)
    info = api.model_info("kenya/swahili-asr")
    assert {s.rfilename for s in info.siblings} == {
        "model.safetensors",
        "README.md",
        "config/config.json",
    }
    assert info.card_data["license"] == "apache-2.0"
    path = hf_hub_download("kenya/swahili-asr", "model.safetensors", endpoint=live_server)
    assert Path(path).read_bytes() == weights
    folder = snapshot_download(
        "kenya/swahili-asr", endpoint=live_server, local_dir=tmp_path / "snap"
    )
    assert (tmp_path / "snap" / "config" / "config.json").read_bytes() == b'{"hidden": 300}'
    assert (
        hashlib.sha256((tmp_path / "snap" / "model.safetensors").read_bytes()).hexdigest()
        == hashlib.sha256(weights).hexdigest()
    )
    assert folder


def test_datasets_and_revisions(client, live_server, make, hf_home) -> None:
    kenya = make.delegate("kenya", "KE")
    first = publish(
        client,
        kenya,
        "kenya",
        "swahili-speech",
        {"data.csv": b"a,b\n1,2\n"},
        kind="dataset",
        licence="cc-by-4.0",
    )
    publish(
        client,
        kenya,
        "kenya",
        "swahili-speech",
        {"data.csv": b"a,b\n1,2\n3,4\n"},
        kind="dataset",
        create=False,
    )
    latest = hf_hub_download(
        "kenya/swahili-speech", "data.csv", repo_type="dataset", endpoint=live_server
    )
    assert Path(latest).read_bytes() == b"a,b\n1,2\n3,4\n"
    old = hf_hub_download(
        "kenya/swahili-speech",
        "data.csv",
        repo_type="dataset",
        revision=first["revision"],
        endpoint=live_server,
    )
    assert Path(old).read_bytes() == b"a,b\n1,2\n"


def test_resolve_headers_and_ranges(client, make) -> None:
    kenya = make.delegate("kenya", "KE")
    data = bytes(range(32, 127)) * 11000  # text: the commons refuses unknown binary content
    publish(client, kenya, "kenya", "blob", {"data.bin.txt": data})
    head = client.head("/kenya/blob/resolve/main/data.bin.txt", follow_redirects=False)
    assert head.status_code == 302
    assert head.headers["X-Linked-Size"] == str(len(data))
    assert head.headers["X-Linked-Etag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    assert len(head.headers["X-Repo-Commit"]) == 40
    part = client.get(head.headers["Location"], headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.content == data[1000:2000]
    assert part.headers["Content-Range"] == f"bytes 1000-1999/{len(data)}"
    tail = client.get(head.headers["Location"], headers={"Range": "bytes=-10"})
    assert tail.content == data[-10:]
    missing = client.get("/kenya/blob/resolve/main/nothing.txt")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "commons.unknown_file"


def test_file_bytes_are_never_gzipped(client, make) -> None:
    kenya = make.delegate("kenya", "KE")
    data = b"a" * 100_000  # very compressible, still served as it is
    publish(client, kenya, "kenya", "text", {"data.txt": data})
    answer = client.get("/kenya/text/resolve/main/data.txt", headers={"Accept-Encoding": "gzip"})
    assert answer.status_code == 200
    assert "content-encoding" not in answer.headers
    assert answer.headers["Content-Length"] == str(len(data))
    assert answer.content == data
