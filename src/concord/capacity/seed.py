"""Demo step: a year of capacity building — a dozen programmes with enrolments and signed
completions, commitments at different stages, and an exchange with matches."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from concord.capacity import commitments, enrolment, exchange, matching, programmes
from concord.capacity.programmes import SessionSpec
from concord.capacity.tables import ExchangeItem, Programme
from concord.errors import N_
from concord.hubkey import load_or_create
from concord.members.tables import Member
from concord.seeding import World

STEP = N_("Programmes, commitments and the exchange")

# (host, title, kind, area, languages, mode, place, seats, eligibility, start, days, tz)
PROGRAMMES = [
    (
        "china",
        "Foundations of large models for public services",
        "workshop",
        "talent-training",
        ["zh", "en", "fr"],
        "hybrid",
        "Shanghai",
        30,
        "priority:global-south",
        "2026-02-09",
        3,
        "Asia/Shanghai",
    ),
    (
        "india",
        "Digital public infrastructure and AI",
        "seminar",
        "infrastructure",
        ["en", "fr"],
        "online",
        "",
        80,
        "priority:ldc",
        "2026-03-16",
        2,
        "Asia/Kolkata",
    ),
    (
        "kenya",
        "Building Swahili and Sheng speech datasets",
        "workshop",
        "data-management",
        ["en", "fr"],
        "in-person",
        "Nairobi",
        25,
        "priority:ldc",
        "2026-04-20",
        4,
        "Africa/Nairobi",
    ),
    (
        "brazil",
        "AI for health surveillance",
        "course",
        "industrial-empowerment",
        ["es", "en"],
        "hybrid",
        "Rio de Janeiro",
        40,
        "priority:global-south",
        "2026-05-11",
        5,
        "America/Sao_Paulo",
    ),
    (
        "france",
        "Evaluating and red-teaming AI systems",
        "workshop",
        "security-governance",
        ["fr", "en", "ar"],
        "in-person",
        "Paris",
        24,
        "priority:income:low",
        "2026-06-08",
        3,
        "Europe/Paris",
    ),
    (
        "singapore",
        "Federated learning in practice",
        "course",
        "talent-training",
        ["en", "zh"],
        "online",
        "",
        60,
        "priority:global-south",
        "2026-07-06",
        5,
        "Asia/Singapore",
    ),
    (
        "egypt",
        "Arabic language technology for ministries",
        "workshop",
        "data-management",
        ["ar", "en"],
        "in-person",
        "Cairo",
        30,
        "priority:global-south",
        "2026-09-14",
        3,
        "Africa/Cairo",
    ),
    (
        "korea",
        "Energy-efficient data centres",
        "seminar",
        "infrastructure",
        ["en"],
        "online",
        "",
        100,
        "",
        "2026-10-05",
        1,
        "Asia/Seoul",
    ),
    (
        "south-africa",
        "AI policy and regulation clinic",
        "workshop",
        "security-governance",
        ["en", "fr"],
        "hybrid",
        "Pretoria",
        20,
        "only:ldc",
        "2026-12-07",
        2,
        "Africa/Johannesburg",
    ),
    (
        "indonesia",
        "AI for disaster early warning",
        "workshop",
        "industrial-empowerment",
        ["en"],
        "in-person",
        "Jakarta",
        12,
        "priority:sids",
        "2027-01-18",
        3,
        "Asia/Jakarta",
    ),
    (
        "germany",
        "Open-source MLOps",
        "course",
        "talent-training",
        ["en", "ru"],
        "online",
        "",
        50,
        "priority:global-south",
        "2027-02-15",
        5,
        "Europe/Berlin",
    ),
    (
        "japan",
        "Robotics for agriculture",
        "seminar",
        "industrial-empowerment",
        ["en", "zh"],
        "online",
        "",
        60,
        "priority:income:lower-middle",
        "2027-03-08",
        2,
        "Asia/Tokyo",
    ),
]
PARTICIPANTS = [
    "ethiopia",
    "rwanda",
    "nepal",
    "bangladesh",
    "lao-pdr",
    "senegal",
    "nigeria",
    "viet-nam",
    "fiji",
    "jamaica",
    "morocco",
    "colombia",
    "indonesia",
    "chile",
]


def seed(world: World) -> None:
    with world.sessions() as db:
        if db.scalars(select(Programme)).first() is not None:
            return
        members = {m.slug: m for m in db.scalars(select(Member)).all()}
        key = load_or_create(world.settings)
        now = datetime.now(UTC)
        for number, row in enumerate(PROGRAMMES):
            host, title, kind, area, langs, mode, place, seats, rule, start, days, tz = row
            first = date.fromisoformat(start)
            specs = [
                SessionSpec(
                    f"Day {d + 1}",
                    datetime.combine(first + timedelta(days=d), datetime.min.time()).replace(
                        hour=9
                    ),
                    datetime.combine(first + timedelta(days=d), datetime.min.time()).replace(
                        hour=16
                    ),
                    tz,
                )
                for d in range(days)
            ]
            p = programmes.announce(
                db,
                members[host],
                title=title,
                kind=kind,
                area=area,
                languages=langs,
                mode=mode,
                place=place,
                seats=seats,
                sessions=specs,
                eligibility=rule,
                description=f"{title}: part of the AI Capacity-Building Action Plan.",
            )
            opens = p.sessions[0].starts_at - timedelta(days=30)
            past = p.sessions[0].starts_at < now
            count = min(len(PARTICIPANTS), seats + 2) if number == 9 else 6 + number % 5
            for k in range(count):
                slug = PARTICIPANTS[(number + k) % len(PARTICIPANTS)]
                if slug == host or (
                    rule.startswith("only:")
                    and slug
                    not in ("ethiopia", "rwanda", "nepal", "bangladesh", "lao-pdr", "senegal")
                ):
                    continue
                e = enrolment.enrol(
                    db,
                    p,
                    members[slug],
                    participant=f"Participant {k + 1} of {members[slug].name}",
                    email=f"p{k + 1}@{slug}.example",
                    at=min(opens, now - timedelta(days=1)) if past else None,
                )
                if past and e.status == "enrolled":
                    enrolment.record_attendance(db, e, len(p.sessions) - (k % 3 == 2))
                    if k % 4 != 3 and e.attended > 0:
                        enrolment.complete(db, e, key, world.settings.public_url)
        _exchange(db, members)
        org = None
        year_start, year_end = date(2026, 1, 1), date(2026, 12, 31)
        commitments.make(
            db,
            member=org,
            title="10 workshops and seminars for developing countries in 2026",
            metric="programmes-for-developing",
            target=10,
            start=year_start,
            due=year_end,
        )
        commitments.make(
            db,
            member=org,
            title="50,000 GPU-hours offered to Global South members in 2026",
            metric="gpu-hours-to-global-south",
            target=50_000,
            start=year_start,
            due=year_end,
        )
        commitments.make(
            db,
            member=org,
            title="200 training seats for least developed countries in 2026",
            metric="seats-for-ldc",
            target=200,
            start=year_start,
            due=year_end,
        )
        commitments.make(
            db,
            member=members["china"],
            title="China: 3 programmes for developing countries by June 2027",
            metric="programmes-for-developing",
            target=3,
            start=date(2026, 1, 1),
            due=date(2027, 6, 30),
        )
        commitments.make(
            db,
            member=org,
            title="10 workshops for developing countries by 31 December 2025",
            metric="programmes-for-developing",
            target=10,
            start=date(2025, 1, 1),
            due=date(2025, 12, 31),
        )
        db.commit()
    world.notes.append(
        f"{len(PROGRAMMES)} programmes, commitments and an exchange with matches: "
        "see /programmes and /exchange."
    )


Post = tuple[str, str, str, str, float, list[str], str, dict[str, Any]]


def _exchange(db: Session, members: dict[str, Member]) -> None:
    posts: list[Post] = [
        (
            "need",
            "compute",
            "rwanda",
            "GPU time to fine-tune a Kinyarwanda speech model",
            4000,
            ["en", "fr"],
            "Africa/Kigali",
            {"hardware": "A100 or H100"},
        ),
        (
            "need",
            "compute",
            "nepal",
            "Compute for flood forecasting models",
            2500,
            ["en"],
            "Asia/Kathmandu",
            {"hardware": "any 40 GB GPU"},
        ),
        (
            "need",
            "compute",
            "senegal",
            "Training a Wolof translation model",
            6000,
            ["fr"],
            "Africa/Dakar",
            {"hardware": "A100"},
        ),
        (
            "need",
            "expert",
            "ethiopia",
            "Data protection expert for a national AI strategy",
            20,
            ["en"],
            "Africa/Addis_Ababa",
            {"fields": ["privacy", "policy"]},
        ),
        (
            "need",
            "expert",
            "lao-pdr",
            "MLOps mentor for a health ministry team",
            15,
            ["en"],
            "Asia/Vientiane",
            {"fields": ["mlops"]},
        ),
        (
            "need",
            "seats",
            "bangladesh",
            "Seats in an advanced NLP course",
            10,
            ["en"],
            "Asia/Dhaka",
            {},
        ),
        (
            "need",
            "funding",
            "fiji",
            "Funding for a climate data platform",
            150_000,
            ["en"],
            "Pacific/Fiji",
            {},
        ),
        (
            "need",
            "dataset",
            "jamaica",
            "Caribbean English speech data",
            1,
            ["en"],
            "America/Jamaica",
            {"dataset": "kenya/swahili-speech"},
        ),
        (
            "offer",
            "compute",
            "china",
            "GPU-hours on a national computing network",
            20_000,
            ["zh", "en"],
            "Asia/Shanghai",
            {"hardware": "H800 cluster"},
        ),
        (
            "offer",
            "compute",
            "france",
            "Research GPU allocation",
            5000,
            ["fr", "en"],
            "Europe/Paris",
            {"hardware": "H100"},
        ),
        (
            "offer",
            "compute",
            "korea",
            "Cloud credits for public-interest AI",
            8000,
            ["en"],
            "Asia/Seoul",
            {"hardware": "A100"},
        ),
        (
            "offer",
            "expert",
            "germany",
            "Privacy engineering advisers",
            30,
            ["en"],
            "Europe/Berlin",
            {"fields": ["privacy"]},
        ),
        (
            "offer",
            "expert",
            "singapore",
            "MLOps engineers on secondment",
            20,
            ["en", "zh"],
            "Asia/Singapore",
            {"fields": ["mlops"]},
        ),
        (
            "offer",
            "seats",
            "india",
            "Seats in an applied NLP programme",
            25,
            ["en"],
            "Asia/Kolkata",
            {},
        ),
        (
            "offer",
            "funding",
            "norway",
            "Grants for climate and AI",
            100_000,
            ["en"],
            "Europe/Oslo",
            {},
        ),
    ]
    items = {}
    for side, kind, slug, title, quantity, langs, tz, details in posts:
        items[(side, slug)] = exchange.post(
            db,
            members[slug],
            side=side,
            kind=kind,
            title=title,
            quantity=quantity,
            languages=langs,
            timezone=tz,
            details=details,
        )
    proposed = matching.run(db)
    by_need = {m.need_id: m for m in proposed}
    for slug in ("senegal", "rwanda", "ethiopia", "bangladesh"):
        m = by_need.get(items[("need", slug)].id)
        if m is None:
            continue
        offer = db.get(ExchangeItem, m.offer_id)
        offering = db.get(Member, offer.member_id) if offer else None
        if offering is None:
            continue
        matching.answer(db, m, members[slug], True)
        matching.answer(db, m, offering, True)
    declined = by_need.get(items[("need", "fiji")].id)
    if declined is not None:
        matching.answer(db, declined, members["fiji"], False)
    db.flush()
