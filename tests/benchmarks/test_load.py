"""Smoke test of benchmarks/load.py's parts: the seeded session answers what Locust's users
ask, and the bare ceiling answers the same routes."""

from __future__ import annotations

import sys
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from concord.config import Settings
from concord.governance import ballots
from concord.members import keys

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from _load_bare import create_app as bare_app
from _load_seed import seed


def test_the_seeded_session_answers_delegates_and_nodes(
    client: TestClient, settings: Settings, sessions: sessionmaker[Session]
) -> None:
    # Prepare: four delegates, two of whose nodes wait for a job that needs three.
    seeded = seed(settings, sessions, delegates=4, nodes=2, statements=3, votes_each=2)
    ref = seeded.reference
    me = seeded.delegates[1]
    headers = {"Authorization": f"Bearer {me['token']}"}
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(me["key"]))
    payload = ballots.make_payload(ref, me["slug"], "yes")
    body = {
        "ballots": [{"payload": payload, "signature": keys.sign(key, ballots.message(payload))}]
    }
    # Execute: what a Delegate and a Node user send.
    cast = client.post(f"/api/proposals/{ref}/ballots", headers=headers, json=body)
    voted = client.post(
        f"/api/proposals/{ref}/statements/{seeded.statements[0]}/votes",
        headers=headers,
        json={"vote": "agree"},
    )
    opinion = client.get(f"/api/proposals/{ref}/map")
    work = client.get("/api/federation/work", params={"wait": 0}, headers=headers)
    # Assert
    assert cast.status_code == 201, cast.text
    assert voted.status_code == 200, voted.text
    assert opinion.status_code == 200 and opinion.json()["points"]
    assert work.status_code == 204
    assert work.headers["Concord-Jobs-Waiting"] == str(seeded.job)


def test_the_bare_ceiling_answers_the_same_routes() -> None:
    # Prepare
    with TestClient(bare_app()) as bare:
        # Execute
        ballot = bare.post("/api/proposals/CR-1/ballots", json={"ballots": []})
        vote = bare.post("/api/proposals/CR-1/statements/1/votes", json={"vote": "agree"})
        read = bare.get("/api/proposals/CR-1/map")
    # Assert
    assert (ballot.status_code, vote.status_code, read.status_code) == (201, 200, 200)
