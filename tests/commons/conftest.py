"""Helpers to publish repositories through the real API."""

from __future__ import annotations

import hashlib
import io
from typing import Any

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
            params={"filename": path},
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


__all__ = ["CARD", "io", "publish", "safetensors_bytes"]
