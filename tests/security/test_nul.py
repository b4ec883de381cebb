"""NUL (U+0000) never reaches the database: PostgreSQL's text columns cannot hold it (the
driver raised, a 500), SQLite would store what PostgreSQL refuses, and no person's words,
slug or search contain it. JSON bodies are refused at the edge (Schemathesis found a 500 on
/api/programmes), paths and query strings at the edge too (a 500 on /api/matches?status=%00),
and every other text (form fields, headers) where it would be bound into a statement."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select, text
from tests.governance.conftest import resolution
from tests.governance.test_pages import sign_in

from concord.errors import NulCharacter
from concord.governance.tables import Statement


def test_a_nul_character_in_a_json_body_is_refused(client: Any, make: Any) -> None:
    # Prepare
    kenya = make.delegate("kenya", "KE")
    body = {"area": "", "host": "\u0000", "kind": "", "languages": [], "mode": "", "seats": 0}

    # Execute
    answer = client.post("/api/programmes", json={**body, "title": ""}, headers=kenya.headers)
    keyed = client.post("/api/programmes", json={"a\u0000": 1}, headers=kenya.headers)

    # Assert
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "request.malformed_json"
    assert keyed.status_code == 400, keyed.text


@pytest.mark.parametrize(
    "address",
    [
        "/api/matches?status=%00",
        "/api/matches?status=a%00b",
        "/api/members/ke%00ya",
        "/proposals/a%00b",
    ],
)
def test_a_nul_character_in_the_address_is_refused(client: Any, make: Any, address: str) -> None:
    # Prepare
    kenya = make.delegate("kenya", "KE")

    # Execute
    answer = client.get(address, headers=kenya.headers)

    # Assert
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "request.nul_character"


def test_a_nul_character_in_a_form_field_is_refused_and_nothing_is_stored(
    client: Any, make: Any, db: Any
) -> None:
    # Prepare: a proposal in deliberation and a delegate signed in on the pages
    kenya = make.delegate("kenya", "KE")
    ref = resolution(client, kenya)
    client.post(f"/api/proposals/{ref}/deliberation", headers=kenya.headers)
    csrf = sign_in(client, kenya)

    # Execute
    answer = client.post(
        f"/proposals/{ref}/statements",
        data={"csrf": csrf, "text": "Share\x00 tools."},
        headers={"Accept": "text/html"},
        follow_redirects=False,
    )

    # Assert: a page that says why, and no statement
    assert answer.status_code == 400, answer.text
    assert "NUL" in answer.text
    assert db.scalar(select(func.count()).select_from(Statement)) == 0


def test_the_database_guard_refuses_nul_in_any_bound_text(sessions: Any) -> None:
    # Prepare / Execute / Assert: single and many-row statements; bytes pass
    with sessions() as db:
        with pytest.raises(NulCharacter):
            db.execute(text("SELECT :a"), {"a": "x\x00"})
        db.rollback()
        with pytest.raises(NulCharacter):
            db.execute(text("SELECT :a"), [{"a": "x"}, {"a": "\x00"}])
        db.rollback()
        assert db.execute(text("SELECT :a"), {"a": "plain"}).scalar() == "plain"


def test_several_rows_inserted_in_one_statement_pass_the_nul_check(
    client: Any, make: Any, db: Any
) -> None:
    """SQLAlchemy batches an INSERT … RETURNING of several rows ("insertmanyvalues") into one
    statement whose parameters are one flat row of every row's values: the check must read it
    as such (it raised TypeError on a programme with two sessions)."""
    from concord.capacity.tables import ProgrammeSession

    # Prepare
    kenya = make.delegate("kenya", "KE")
    day = {"starts": "2030-01-07T09:00:00", "ends": "2030-01-07T16:00:00", "timezone": "UTC"}
    body = {
        "host": "kenya",
        "title": "Two days",
        "kind": "course",
        "area": "talent-training",
        "languages": ["en"],
        "mode": "online",
        "seats": 5,
        "sessions": [
            {**day, "title": "Day 1"},
            {
                **day,
                "title": "Day 2",
                "starts": "2030-01-08T09:00:00",
                "ends": "2030-01-08T16:00:00",
            },
        ],
    }

    # Execute
    made = client.post("/api/programmes", json=body, headers=kenya.headers)

    # Assert
    assert made.status_code == 201, made.text
    assert db.scalar(select(func.count()).select_from(ProgrammeSession)) == 2


def test_the_database_guard_lets_many_rows_inserted_in_one_statement_through(
    sessions: Any,
) -> None:
    # Prepare: a scratch table; the ORM inserts several rows with RETURNING as one statement
    # whose parameters are one flat list (SQLAlchemy's "insertmanyvalues"), as it did for a
    # programme's sessions in the demo
    probe = Table(
        "nul_probe",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("n", Integer),
        Column("s", String(20)),
        prefixes=["TEMPORARY"],
    )
    with sessions() as db:
        probe.create(db.connection())

        # Execute
        ids = db.execute(
            insert(probe).returning(probe.c.id), [{"n": 1, "s": "a"}, {"n": 2, "s": "b"}]
        ).all()
        with pytest.raises(NulCharacter):
            db.execute(
                insert(probe).returning(probe.c.id), [{"n": 3, "s": "c"}, {"n": 4, "s": "\x00"}]
            )
        db.rollback()

    # Assert
    assert len(ids) == 2
