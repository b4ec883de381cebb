"""The session `benchmarks/load.py` puts under load, seeded through the library (no HTTP).

Members (labs, so that many may share a country), each with a delegate, an API token and a
registered Ed25519 key; one resolution in its ballot window with a conversation (statements
and some votes, so that the opinion map has something to compute); a federated job that the
first `nodes` members' registered nodes take part in. The model in the commons is pushed later,
with `concord push`, once a hub serves.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.orm import Session, sessionmaker

from concord.config import Settings
from concord.db import utcnow
from concord.federation import jobs
from concord.federation.registration import register_node, registration_message
from concord.governance import deliberation, proposals
from concord.governance.jobspec import JobSpec
from concord.members import directory, keys, people, tokens
from concord.members.tables import Member

COUNTRIES = ("KE", "BR", "IN", "FR", "DE", "NG", "ID", "MX", "ZA", "JP", "EG", "AR", "VN", "CA")
TASK = "mnist-2nn"
BATCH = 100  # members per transaction: each admission and key is a log entry


@dataclass
class Seeded:
    """What the Locust users need: who they are, what they vote on, where the model is."""

    reference: str = ""
    statements: list[int] = field(default_factory=list)
    delegates: list[dict[str, str]] = field(default_factory=list)  # slug, token, key (hex)
    job: int = 0

    def plan(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "statements": self.statements,
            "delegates": self.delegates,
            "job": self.job,
        }


def _raw(private: Any) -> str:
    return bytes(
        private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
    ).hex()


def seed(
    settings: Settings,
    sessions: sessionmaker[Session],
    *,
    delegates: int,
    nodes: int,
    statements: int = 24,
    votes_each: int = 6,
) -> Seeded:
    out = Seeded()
    rng = random.Random(19)
    persons = []
    for start in range(0, delegates, BATCH):
        with sessions() as db:
            for i in range(start, min(delegates, start + BATCH)):
                slug = f"d{i:04d}"
                member = directory.admit(
                    db,
                    slug=slug,
                    name=f"Delegation {i}",
                    kind="lab",
                    country_code=COUNTRIES[i % len(COUNTRIES)],
                )
                person = people.add_person(
                    db,
                    name=f"Delegate {i}",
                    email=f"{slug}@load.example",
                    role="delegate",
                    member=slug,
                )
                secret = tokens.issue(db, person, label="load").secret
                private = keys.generate()
                keys.register(db, member, keys.public_base64(private))
                persons.append(person)
                out.delegates.append({"slug": slug, "token": secret, "key": _raw(private)})
            db.commit()
    with sessions() as db:
        sponsor = db.merge(persons[0])
        p = proposals.create(
            db,
            sponsor,
            kind="resolution",
            title="On open models for public health",
            texts={"en": "The organisation shares its health models openly."},
        )
        proposals.open_deliberation(db, sponsor, p)
        for i in range(statements):
            s = deliberation.add_statement(
                db, db.merge(persons[i % len(persons)]), p, f"Statement {i} on open models."
            )
            out.statements.append(s.id)
        db.commit()
        out.reference = p.reference
    for start in range(0, delegates, BATCH):
        with sessions() as db:
            p = proposals.get(db, out.reference)
            for person in persons[start : start + BATCH]:
                voter = db.merge(person)
                for sid in rng.sample(out.statements, min(votes_each, len(out.statements))):
                    vote = rng.choice(("agree", "disagree", "pass"))
                    deliberation.vote(db, voter, p, sid, vote)
            db.commit()
    with sessions() as db:
        p = proposals.get(db, out.reference)
        # No closing time: the benchmark closes the ballot itself once the load has stopped.
        proposals.open_ballot(db, db.merge(persons[0]), p)
        db.commit()
    taking_part = out.delegates[:nodes]
    if not taking_part:
        return out
    spec = JobSpec.model_validate(
        {
            "task": TASK,
            "participants": {"members": [d["slug"] for d in taking_part]},
            "rounds": 1,
            # One more than there are nodes: the round never opens, so every node long-polls
            # for the whole window, as nodes do while a job waits for partners.
            "min_participants": nodes + 1,
            "evaluate_every": 0,
        }
    )
    with sessions() as db:
        out.job = jobs.create_job(db, settings, spec, title="Load: waiting for partners").id
        db.commit()
    with sessions() as db:
        for d in taking_part:
            member = directory.get_member(db, d["slug"])
            assert isinstance(member, Member)
            private = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(d["key"]))
            signed_at = utcnow().isoformat()
            signature = keys.sign(private, registration_message(d["slug"], [TASK], signed_at))
            register_node(db, member, [TASK], signed_at=signed_at, signature=signature)
        db.commit()
    return out
