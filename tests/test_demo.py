"""The demo seeds a living organisation and can run again without changing it."""

from __future__ import annotations

from sqlalchemy import func, select

from concord.demo import run_demo
from concord.ledger.tables import LogEntry
from concord.members.countries import country
from concord.members.tables import Member


def test_demo_is_idempotent_and_diverse(settings, db) -> None:
    world = run_demo(settings)
    members = db.scalars(select(Member)).all()
    assert len(members) >= 30
    countries = [country(m.country_code) for m in members]
    assert {c.region for c in countries} == {"Africa", "Americas", "Asia", "Europe", "Oceania"}
    assert {c.income_group for c in countries} >= {"low", "lower-middle", "upper-middle", "high"}
    assert any(c.global_south for c in countries) and any(not c.global_south for c in countries)
    assert "kenya" in world.facts["tokens"]
    log_size = db.scalar(select(func.count()).select_from(LogEntry))
    run_demo(settings)
    assert db.scalar(select(func.count()).select_from(Member)) == len(members)
    assert db.scalar(select(func.count()).select_from(LogEntry)) == log_size
