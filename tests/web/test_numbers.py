"""Numbers on pages read as people write them, in each of the six languages."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from concord.federation.tables import Job, Round, Update
from concord.web import numbers

NARROW = "\u202f"  # CLDR's French group separator
NBSP = "\u00a0"


@pytest.mark.parametrize(
    ("language", "grouped", "share"),
    [
        ("en", "466,000", "47%"),
        ("fr", f"466{NARROW}000", f"47{NBSP}%"),
        ("es", "466.000", f"47{NBSP}%"),
        ("ru", f"466{NBSP}000", f"47{NBSP}%"),
        ("zh", "466,000", "47%"),
        ("ar", "466,000", "47%"),
    ],
)
def test_grouping_and_percentages_follow_the_language(
    language: str, grouped: str, share: str
) -> None:
    assert numbers.number(466_000.0, language=language) == grouped
    assert numbers.count(466_000, language=language) == grouped
    assert numbers.percent(0.466, language=language) == share


def test_measured_figures_keep_three_significant_digits_and_never_go_scientific() -> None:
    assert numbers.number(0.001016, language="en") == "0.00102"
    assert numbers.number(12.345, language="fr") == "12,3"
    assert numbers.number(0.91234, 3, language="ru") == "0,912"
    assert numbers.number(3, language="en") == "3"
    assert numbers.percent(0.4662, 1, language="es") == f"46,6{NBSP}%"


def test_energy_emissions_and_sizes_take_the_unit_a_person_would() -> None:
    assert numbers.energy(0.001016, language="fr") == f"1,0{NBSP}Wh"
    assert numbers.energy(2.5, language="en") == f"2.5{NBSP}kWh"
    assert numbers.energy(1500, language="en") == f"1.5{NBSP}MWh"
    assert numbers.energy(0.5, language="ru") == f"500{NBSP}Вт·ч"
    assert numbers.emissions(0.0004, language="en") == f"0.4{NBSP}g CO2e"
    assert numbers.size(123_456_789, language="fr") == f"123{NBSP}Mo"
    assert numbers.size(12, language="en") == f"12{NBSP}B"


def test_large_counts_are_compact_and_non_numbers_pass_through() -> None:
    assert numbers.count(1_234_567, language="en") == "1.2M"
    assert numbers.count(1_234_567, language="ru") == f"1,2{NBSP}млн"
    assert numbers.number("—") == "—"
    assert numbers.number(None) is None
    assert numbers.number(True) is True  # a yes/no is not a quantity
    assert numbers.number(float("nan")) != numbers.number(0.0)


def _training(sessions: sessionmaker[Session], member_id: int) -> None:
    """One closed round in which a member trained on 466,000 examples using 1.016 Wh."""
    now = datetime.now(UTC)
    with sessions() as s, s.begin():
        job = Job(title="Digits", spec={}, status="finished", created_at=now)
        s.add(job)
        s.flush()
        round_row = Round(
            job_id=job.id,
            number=1,
            status="closed",
            participants=[member_id],
            parameters="p",
            deadline=now,
            opened_at=now,
            closed_at=now,
            examples=466_000,
        )
        s.add(round_row)
        s.flush()
        s.add(
            Update(
                round_id=round_row.id,
                member_id=member_id,
                path="u",
                sha256="0" * 64,
                examples=466_000,
                metrics={},
                energy_kwh=0.001016,
                emissions_kg=0.0004,
                signature="",
                received_at=now,
            )
        )


@pytest.mark.parametrize(
    ("language", "examples", "energy"),
    [
        ("fr", f"466{NARROW}000 exemples", f"1,0{NBSP}Wh"),
        ("es", "466.000 ejemplos", f"1,0{NBSP}Wh"),
        ("ru", f"466{NBSP}000", f"1,0{NBSP}Вт·ч"),
        ("zh", "466,000", f"1.0{NBSP}瓦时"),
        ("ar", "466,000", f"1.0{NBSP}واط ساعة"),
        ("en", "466,000 examples", f"1.0{NBSP}Wh"),
    ],
)
def test_the_impact_page_prints_localised_numbers_and_units(
    client: TestClient, make, sessions: sessionmaker[Session], language: str, examples, energy
) -> None:
    # Prepare
    kenya = make.delegate("kenya", "KE")
    _training(sessions, kenya.member.id)

    # Execute
    page = client.get("/impact", headers={"Accept-Language": language}).text

    # Assert
    assert examples in page
    assert energy in page
    assert "e+05" not in page and "0.001016" not in page and "0.00102" not in page


@pytest.mark.parametrize(
    ("language", "moment", "five", "one"),
    [
        ("en", "Dec 2, 2026, 6:41:07\u202fAM", "5 seconds", "1 second"),
        ("fr", "2 déc. 2026, 06:41:07", f"5{NBSP}secondes", f"1{NBSP}seconde"),
        ("es", "2 dic 2026, 6:41:07", "5 segundos", "1 segundo"),
        ("ru", "2 дек. 2026\u202fг., 06:41:07", "5 секунд", "1 секунда"),
        ("zh", "2026年12月2日 06:41:07", "5秒钟", "1秒钟"),
        ("ar", "02\u200f/12\u200f/2026، 6:41:07 ص", "5 ثوان", "ثانية"),
    ],
)
def test_moments_in_utc_and_durations_read_as_the_language_writes_them(
    language: str, moment: str, five: str, one: str
) -> None:
    at = datetime(2026, 12, 2, 6, 41, 7, 250_000, tzinfo=UTC)
    assert numbers.utc_moment(at, language=language) == moment
    assert numbers.utc_moment(at.isoformat(), language=language) == moment  # as the API gives it
    assert numbers.seconds(5.0, language=language) == five
    assert numbers.seconds(1, language=language) == one


def test_moments_are_written_in_utc_and_non_moments_pass_through() -> None:
    paris = datetime(2026, 12, 2, 7, 41, 7, tzinfo=UTC).astimezone(ZoneInfo("Europe/Paris"))
    assert numbers.utc_moment(paris, language="fr") == "2 déc. 2026, 07:41:07"  # not 08:41
    assert numbers.utc_moment(datetime(2026, 12, 2, 6, 41, 7), language="fr").endswith("06:41:07")
    assert numbers.seconds(0.5, language="en") == "0.5 seconds"
    assert numbers.utc_moment("—") == "—" and numbers.seconds(None) is None
