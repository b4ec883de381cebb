"""The demo step: one standard and one project adopted, one resolution rejected for lack of a
bloc majority; running it again changes nothing; every decision recounts from the log."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from concord.config import Settings
from concord.governance import ballots, seed
from concord.governance.tables import Decision, Proposal
from concord.ledger.tables import LogEntry
from concord.members import keys, people
from concord.members.directory import admit
from concord.seeding import World

MEMBERS = [
    ("kenya", "KE"),
    ("brazil", "BR"),
    ("india", "IN"),
    ("china", "CN"),
    ("ethiopia", "ET"),
    ("nepal", "NP"),
    ("ghana", "GH"),
    ("peru", "PE"),
    ("chile", "CL"),
    ("fiji", "FJ"),
    ("france", "FR"),
    ("germany", "DE"),
    ("senegal", "SN"),
    ("australia", "AU"),
    ("norway", "NO"),
    ("japan", "JP"),
]


def test_seed_decides_five_proposals_once(settings: Settings, sessions: Any, db: Session) -> None:
    world = World(settings=settings, sessions=sessions)
    with sessions() as session:
        for slug, code in MEMBERS:
            member = admit(session, slug=slug, name=slug.title(), kind="country", country_code=code)
            people.add_person(
                session, name=slug, email=f"delegate@{slug}.example", role="delegate", member=slug
            )
            private = keys.generate()
            keys.register(session, member, keys.public_base64(private))
            keys.save_private(private, world.keys_dir / f"{slug}.pem")
        session.commit()
    world.facts["members"] = [slug for slug, _ in MEMBERS]
    seed.seed(world)
    outcomes = {p.kind: p.status for p in db.scalars(select(Proposal)).all() if not p.method}
    assert outcomes == {"standard": "adopted", "project": "adopted", "resolution": "rejected"}
    bureau = db.scalars(select(Proposal).where(Proposal.title.like("Election%"))).one()
    elected = ballots.ranked_options(db, bureau)
    assert bureau.status == "adopted" and len(elected) == 3
    stv = ballots.decision_of(db, bureau).arithmetic  # type: ignore[union-attr]
    assert all(c["met"] for c in stv["result"]["bloc_checks"])
    assert stv["proxies"] == [
        {"member": "fiji", "holder": "australia", "entry": stv["proxies"][0]["entry"],
         "counted": True, "why": "counted"}
    ]  # fmt: skip
    priorities = db.scalars(select(Proposal).where(Proposal.title.like("Capacity%"))).one()
    ranked = [o["option"] for o in ballots.ranked_options(db, priorities)]
    assert sorted(ranked) == sorted(seed.PRIORITIES)
    rejected = db.scalars(select(Decision).where(Decision.outcome == "rejected")).one()
    failed = [c["check"] for c in rejected.arithmetic["checks"] if not c["met"]]
    assert failed == ["bloc_majority:global-north"]
    size = db.scalar(select(func.count()).select_from(LogEntry))
    seed.seed(world)
    assert db.scalar(select(func.count()).select_from(LogEntry)) == size
    with sessions() as session:
        recounted = ballots.recount_log(session)
    assert len(recounted) == 5 and all(r["matches"] for r in recounted), recounted
