"""A slow download must not stop the hub from writing (on SQLite a held read transaction is the
write lock), and an upload streaming in must not either."""

from __future__ import annotations

import time

import httpx
import numpy as np
from safetensors.numpy import save

from .conftest import publish


def test_writes_proceed_while_a_download_is_paused(client, live_server, make) -> None:
    kenya = make.delegate("kenya", "KE")
    big = save({"w": np.random.default_rng(0).standard_normal(6_000_000).astype(np.float32)})
    publish(client, kenya, "kenya", "big", {"model.safetensors": big})
    reader = httpx.Client(base_url=live_server, timeout=60, follow_redirects=True)
    with reader, reader.stream("GET", "/kenya/big/resolve/main/model.safetensors") as download:
        first = next(download.iter_bytes(65536))
        assert first
        # The reader stops here: the response is mid-flight, held back by the socket.
        started = time.monotonic()
        with httpx.Client(base_url=live_server, timeout=60) as writer:
            made = writer.post(
                "/api/commons/repos",
                headers=kenya.headers,
                json={"owner": "kenya", "name": "other", "kind": "model", "licence": "mit"},
            )
        waited = time.monotonic() - started
    assert made.status_code == 201, made.text
    # The database's busy timeout is 30 s; a write that waited for the download would show it.
    assert waited < 10, waited
