"""The impact dashboard over a year of activity: 193 members, 1,000,000 downloads, 10,000
ballots, 100 federated jobs, on SQLite and PostgreSQL.

    python benchmarks/impact.py            # the full year
    python benchmarks/impact.py --quick    # a tenth of it

What is measured: `concord.impact.indicators.dashboard()` — every indicator with its
breakdowns by region, income group and bloc, its Gini coefficient and its equity shares.
Real rows in the database: 1,000,000 downloads (the commons counts them by country with one
GROUP BY), 100,000 enrolments and 10,000 accepted matches across 193 members. Ballots,
deliberation and federated contributions (10,000 ballots, 100 jobs) come from dictionaries
shaped exactly like the governance and federation `stats` results, since they need whole
proposals and jobs behind them; the output lists these as `stood_in`.
There is no peer: no other tool computes these figures. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url

from concord.capacity.tables import Enrolment, ExchangeItem, Match, Programme
from concord.commons.tables import Download, Repository
from concord.db import make_engine, make_sessionmaker, upgrade
from concord.impact import indicators
from concord.members.countries import all_countries
from concord.members.tables import Member

PG_DEFAULT = "postgresql+psycopg://postgres:postgres@127.0.0.1:5432/postgres"
# Ballots and federated rounds need whole proposals and jobs behind them; their figures come
# from dictionaries shaped like those domains' `stats` results. Downloads are real rows.
STAND_IN = {"concord.governance.stats", "concord.federation.stats"}


def fill(url: str, scale: float) -> list[int]:
    engine = make_engine(url)
    upgrade(engine)
    now = datetime(2026, 6, 1, tzinfo=UTC)
    rng = np.random.default_rng(5)
    countries = [c for c in all_countries().values() if c.un_member]
    with engine.begin() as c:
        c.execute(
            insert(Member),
            [
                {
                    "slug": f"m-{k.iso2.lower()}",
                    "name": k.name,
                    "kind": "country",
                    "country_code": k.iso2,
                    "status": "active",
                    "admitted_at": now,
                }
                for k in countries
            ],
        )
        ids = [r[0] for r in c.execute(text("SELECT id FROM members ORDER BY id"))]
        c.execute(
            insert(Programme),
            [
                {
                    "title": f"P{p}",
                    "kind": "workshop",
                    "area": "talent-training",
                    "host_member_id": ids[p % len(ids)],
                    "languages": ["en"],
                    "mode": "online",
                    "place": "",
                    "seats": 100_000,
                    "eligibility": "",
                    "description": "",
                    "created_at": now,
                }
                for p in range(100)
            ],
        )
        enrolments = int(100_000 * scale)
        members = rng.integers(len(ids), size=enrolments)
        c.execute(
            insert(Enrolment),
            [
                {
                    "programme_id": 1 + k % 100,
                    "member_id": ids[int(members[k])],
                    "participant": "p",
                    "email": "p@x.example",
                    "status": "enrolled",
                    "priority": 0,
                    "attended": 0,
                    "created_at": now,
                    "updated_at": now,
                }
                for k in range(enrolments)
            ],
        )
        repo = c.execute(
            insert(Repository).returning(Repository.id),
            [
                {
                    "kind": "model",
                    "owner": "m-ke",
                    "name": "bench",
                    "member_id": ids[0],
                    "licence": "mit",
                    "mirrored_from": "",
                    "created_at": now,
                }
            ],
        ).scalar_one()
        iso = [k.iso2 for k in countries]
        downloads = int(1_000_000 * scale)
        picks = rng.integers(len(iso) + 1, size=downloads)
        for start in range(0, downloads, 100_000):
            c.execute(
                insert(Download),
                [
                    {
                        "repository_id": repo,
                        "path": "model.safetensors",
                        "country": iso[int(p)] if p < len(iso) else None,
                        "at": now,
                    }
                    for p in picks[start : start + 100_000]
                ],
            )
        matches = int(10_000 * scale)
        c.execute(
            insert(ExchangeItem),
            [
                {
                    "side": "need" if k % 2 == 0 else "offer",
                    "kind": "compute",
                    "member_id": ids[int(rng.integers(len(ids)))],
                    "title": "x",
                    "quantity": 10.0,
                    "languages": ["en"],
                    "timezone": "UTC",
                    "details": {},
                    "status": "matched",
                    "created_at": now,
                }
                for k in range(2 * matches)
            ],
        )
        c.execute(
            insert(Match),
            [
                {
                    "need_id": 2 * k + 1,
                    "offer_id": 2 * k + 2,
                    "quantity": 10.0,
                    "benefit": 1.0,
                    "reasons": {},
                    "status": "accepted",
                    "need_answer": "accept",
                    "offer_answer": "accept",
                    "created_at": now,
                    "decided_at": now + timedelta(days=1),
                }
                for k in range(matches)
            ],
        )
    engine.dispose()
    return ids


def stand_ins(ids: list[int], scale: float) -> dict[str, dict[Any, Any]]:
    rng = np.random.default_rng(9)
    countries = [c.iso2 for c in all_countries().values() if c.un_member]
    downloads = rng.multinomial(
        int(1_000_000 * scale), np.ones(len(countries) + 1) / (len(countries) + 1)
    )
    ballots = rng.multinomial(int(10_000 * scale), np.ones(len(ids)) / len(ids))
    examples = rng.integers(0, 60_000, size=len(ids))
    return {
        "downloads": {
            **{c: int(d) for c, d in zip(countries, downloads[:-1], strict=True)},
            None: int(downloads[-1]),
        },
        "participation": {
            i: {
                "statements": int(b) // 3,
                "statement_votes": int(b) * 4,
                "ballots": int(b),
                "proposals": 0,
            }
            for i, b in zip(ids, ballots, strict=True)
        },
        "contributions": {
            i: {
                "jobs": 100 * int(e > 0),
                "rounds": 5000 * int(e > 0),
                "examples": int(e),
                "energy_kwh": e / 1e4,
                "emissions_kg": e / 2e4,
            }
            for i, e in zip(ids, examples, strict=True)
        },
    }


def measure(url: str, scale: float) -> tuple[float, list[str]]:
    ids = fill(url, scale)
    fakes = stand_ins(ids, scale)
    original = indicators._fetch
    stood_in: list[str] = []

    def fetch(session, source, since, until):  # type: ignore[no-untyped-def]
        if source.module in STAND_IN:
            if source.name not in stood_in:
                stood_in.append(source.name)
            return True, fakes[source.function]
        return original(session, source, since, until)

    indicators._fetch = fetch  # type: ignore[assignment]
    try:
        sessions = make_sessionmaker(make_engine(url))
        times = []
        for _ in range(4):
            with sessions() as db:
                t0 = time.perf_counter()
                items = indicators.dashboard(db, 2026)
                times.append(time.perf_counter() - t0)
        assert {i.source.name for i in items if i.total > 0} >= {"seats", "needs", "downloads"}
    finally:
        indicators._fetch = original  # type: ignore[assignment]
    return statistics.median(times[1:]), stood_in


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    scale = 0.1 if parser.parse_args().quick else 1.0
    result: dict[str, Any] = {
        "members": 193,
        "downloads": int(1_000_000 * scale),
        "ballots": int(10_000 * scale),
        "jobs": 100,
        "enrolments": int(100_000 * scale),
        "matches": int(10_000 * scale),
    }
    with tempfile.TemporaryDirectory() as folder:
        seconds, stood_in = measure(f"sqlite:///{folder}/impact.db", scale)
    result["sqlite_dashboard_s"] = round(seconds, 4)
    result["stood_in"] = stood_in
    server = os.environ.get("CONCORD_DATABASE_URL", "")
    server = server if server.startswith("postgresql") else PG_DEFAULT
    try:
        admin = create_engine(server, isolation_level="AUTOCOMMIT")
        name = f"concord_bench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # no server here: report SQLite only
        print(f"PostgreSQL not measured: {type(exc).__name__}")
    else:
        try:
            url = make_url(server).set(database=name).render_as_string(hide_password=False)
            seconds, _ = measure(url, scale)
            result["postgresql_dashboard_s"] = round(seconds, 4)
        finally:
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
