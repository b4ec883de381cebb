"""Shared by the security tests: a proposal open for deliberation, and a cheap logged write."""

from __future__ import annotations

from typing import Any

import httpx


def open_deliberation(client: Any, delegate: Any) -> str:
    """A new resolution by `delegate`, opened for deliberation; returns its reference."""
    made = client.post(
        "/api/proposals",
        headers=delegate.headers,
        json={"kind": "resolution", "title": "On locks", "texts": {"en": "No lock outlives."}},
    )
    assert made.status_code == 201, made.text
    ref = str(made.json()["reference"])
    opened = client.post(f"/api/proposals/{ref}/deliberation", headers=delegate.headers)
    assert opened.status_code == 200, opened.text
    return ref


def say(client: httpx.Client | Any, delegate: Any, ref: str, text: str) -> Any:
    """Posts a statement: an authenticated write that is logged in the transparency log."""
    return client.post(
        f"/api/proposals/{ref}/statements", headers=delegate.headers, json={"text": text}
    )
