"""Helpers to publish repositories through the real API."""

from __future__ import annotations

import hashlib
import io
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from safetensors.numpy import save


def safetensors_bytes(seed: int = 0, size: int = 64) -> bytes:
    rng = np.random.default_rng(seed)
    return save(
        {
            "layer.weight": rng.standard_normal((size, size)).astype(np.float32),
            "layer.bias": rng.standard_normal(size).astype(np.float32),
        }
    )


CARD = """---
license: apache-2.0
language:
- sw
- en
pipeline_tag: automatic-speech-recognition
datasets:
- kenya/swahili-speech
---
# Swahili speech model

Trained by Concord members.
"""


def publish(
    client,
    actor,
    owner: str,
    name: str,
    files: dict[str, bytes],
    kind: str = "model",
    licence: str = "apache-2.0",
    create: bool = True,
) -> dict[str, Any]:
    if create:
        r = client.post(
            "/api/commons/repos",
            headers=actor.headers,
            json={"owner": owner, "name": name, "kind": kind, "licence": licence},
        )
        assert r.status_code == 201, r.text
    shas = {}
    for path, data in files.items():
        r = client.post(
            "/api/commons/uploads",
            params={"filename": path, "repository": f"{kind}/{owner}/{name}"},
            content=data,
            headers={**actor.headers, "X-Content-SHA256": hashlib.sha256(data).hexdigest()},
        )
        assert r.status_code == 201, r.text
        shas[path] = r.json()["sha256"]
    r = client.post(
        f"/api/commons/repos/{kind}/{owner}/{name}/commits",
        headers=actor.headers,
        json={"files": shas, "message": "publish"},
    )
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture
def hf_home(tmp_path, monkeypatch):
    home = tmp_path / "hf"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    return home


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """A real S3-compatible server (moto's `moto_server`) on a free 127.0.0.1 port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.HTTPError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def s3_bucket(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on the moto server; returns its name (credentials are moto's dummies)."""
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    bucket = f"concord-{time.monotonic_ns()}"
    boto3.client("s3", endpoint_url=moto_endpoint).create_bucket(Bucket=bucket)
    return bucket


__all__ = ["CARD", "io", "publish", "safetensors_bytes"]
