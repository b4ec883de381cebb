"""Governance fixtures: a small assembly of members from both blocs, and a signing helper."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from concord.governance import ballots
from concord.members import keys

SOUTH = [("kenya", "KE"), ("brazil", "BR"), ("india", "IN")]
NORTH = [("france", "FR"), ("germany", "DE")]


@pytest.fixture
def assembly(make: Any) -> dict[str, Any]:
    """Three Global South and two Global North members, each with a delegate and a key."""
    return {slug: make.delegate(slug, code) for slug, code in SOUTH + NORTH}


def signed(
    actor: Any, reference: str, choice: str, reason: str = "", **extra: Any
) -> dict[str, Any]:
    payload = ballots.make_payload(reference, actor.member.slug, choice, reason)
    payload.update(extra)
    return {"payload": payload, "signature": keys.sign(actor.key, ballots.message(payload))}


def resolution(client: TestClient, sponsor: Any, title: str = "On open models") -> str:
    made = client.post(
        "/api/proposals",
        headers=sponsor.headers,
        json={
            "kind": "resolution",
            "title": title,
            "texts": {
                "en": "The organisation encourages open models.",
                "fr": "L'organisation encourage les modèles ouverts.",
            },
        },
    )
    assert made.status_code == 201, made.text
    return str(made.json()["reference"])


def to_ballot(client: TestClient, sponsor: Any, ref: str) -> None:
    assert (
        client.post(f"/api/proposals/{ref}/deliberation", headers=sponsor.headers).status_code
        == 200
    )
    assert (
        client.post(f"/api/proposals/{ref}/ballot", headers=sponsor.headers, json={}).status_code
        == 200
    )


def cast(client: TestClient, actor: Any, ref: str, choice: str, reason: str = "") -> Any:
    return client.post(
        f"/api/proposals/{ref}/ballots",
        headers=actor.headers,
        json={"ballots": [signed(actor, ref, choice, reason)]},
    )
