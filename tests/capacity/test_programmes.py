"""Programmes: announcement, enrolment with seats and a waiting list, attendance, signed
completion records, iCalendar, and the API's refusals."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from icalendar import Calendar
from sqlalchemy import func, select

from concord.capacity import enrolment, programmes
from concord.capacity.programmes import SessionSpec
from concord.capacity.tables import Enrolment
from concord.hubkey import load_or_create, public_key_base64
from concord.ledger.tables import LogEntry
from concord.members.tables import Member


def _soon(days: int = 10) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).strftime("%Y-%m-%dT09:00:00")


def _programme_body(host: str, **changes) -> dict:
    body = {
        "host": host,
        "title": "Federated learning in practice",
        "kind": "course",
        "area": "talent-training",
        "languages": ["en", "fr"],
        "mode": "online",
        "seats": 2,
        "eligibility": "priority:ldc",
        "description": "Five days.",
        "sessions": [
            {
                "title": "Day 1",
                "starts": _soon(),
                "ends": _soon().replace("09:", "16:"),
                "timezone": "Africa/Nairobi",
            }
        ],
    }
    body.update(changes)
    return body


def test_seats_waiting_list_and_automatic_move_up(client: TestClient, make, db) -> None:
    kenya = make.delegate("kenya", "KE")
    ethiopia = make.delegate("ethiopia", "ET")  # LDC: priority on the waiting list
    chile = make.delegate("chile", "CL")
    made = client.post("/api/programmes", json=_programme_body("kenya"), headers=kenya.headers)
    assert made.status_code == 201, made.text
    pid = made.json()["id"]

    def enrol(actor, member, name):
        r = client.post(
            f"/api/programmes/{pid}/enrolments",
            headers=actor.headers,
            json={"member": member, "participant": name, "email": f"{name.lower()}@x.example"},
        )
        assert r.status_code == 201, r.text
        return r.json()

    first = enrol(chile, "chile", "Ana")
    enrol(chile, "chile", "Bea")
    late_chile = enrol(chile, "chile", "Cai")
    late_ethiopia = enrol(ethiopia, "ethiopia", "Dawit")
    assert first["status"] == "enrolled"
    assert (late_chile["status"], late_ethiopia["status"]) == ("waiting", "waiting")
    info = client.get(f"/api/programmes/{pid}").json()
    assert (info["seats_taken"], info["waiting"]) == (2, 2)

    r = client.delete(f"/api/enrolments/{first['id']}", headers=chile.headers)
    assert r.json()["status"] == "cancelled"
    # The LDC member was later on the list but has priority under "priority:ldc".
    assert db.get(Enrolment, late_ethiopia["id"]).status == "enrolled"
    assert db.get(Enrolment, late_chile["id"]).status == "waiting"
    kinds = db.scalars(select(LogEntry.kind)).all()
    assert kinds.count("programme.promoted") == 1


def test_refusals_change_nothing(client: TestClient, make, db) -> None:
    kenya = make.delegate("kenya", "KE")
    peru = make.delegate("peru", "PE")
    bad_tz = _programme_body("kenya")
    bad_tz["sessions"][0]["timezone"] = "Mars/Olympus"
    r = client.post("/api/programmes", json=bad_tz, headers=kenya.headers)
    assert r.status_code == 422 and r.json()["error"]["code"] == "programme.unknown_timezone"
    r = client.post(
        "/api/programmes", json=_programme_body("kenya", seats=-3), headers=kenya.headers
    )
    assert r.json()["error"]["code"] == "programme.invalid"
    r = client.post("/api/programmes", json=_programme_body("kenya"), headers=peru.headers)
    assert r.status_code == 403 and r.json()["error"]["code"] == "auth.not_your_member"
    pid = client.post(
        "/api/programmes",
        json=_programme_body("kenya", eligibility="only:ldc"),
        headers=kenya.headers,
    ).json()["id"]
    r = client.post(
        f"/api/programmes/{pid}/enrolments",
        headers=peru.headers,
        json={"member": "kenya", "participant": "X", "email": "x@x.example"},
    )
    assert r.json()["error"]["code"] == "auth.not_your_member"
    r = client.post(
        f"/api/programmes/{pid}/enrolments",
        headers=peru.headers,
        json={"member": "peru", "participant": "X", "email": "x@x.example"},
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "enrolment.not_eligible"
    assert db.scalar(select(func.count()).select_from(Enrolment)) == 0


def test_past_sessions_cannot_be_enrolled(sessions) -> None:
    with sessions() as db, db.begin():
        from concord.members.directory import admit

        host = admit(db, slug="india", name="India", kind="country", country_code="IN")
        guest = admit(db, slug="nepal", name="Nepal", kind="country", country_code="NP")
        started = datetime.now(UTC) - timedelta(hours=1)
        p = programmes.announce(
            db,
            host,
            title="Past",
            kind="seminar",
            area="infrastructure",
            languages=["en"],
            mode="online",
            seats=5,
            sessions=[SessionSpec("One", started, started + timedelta(hours=3), "UTC")],
        )
        with pytest.raises(enrolment.ProgrammeStarted):
            enrolment.enrol(db, p, guest, participant="Late", email="late@x.example")


def test_completion_records_verify_offline_and_forgeries_fail(
    client: TestClient, make, settings, tmp_path
) -> None:
    from typer.testing import CliRunner

    from concord.cli import app

    kenya = make.delegate("kenya", "KE")
    rwanda = make.delegate("rwanda", "RW")
    pid = client.post(
        "/api/programmes", json=_programme_body("kenya"), headers=kenya.headers
    ).json()["id"]
    eid = client.post(
        f"/api/programmes/{pid}/enrolments",
        headers=rwanda.headers,
        json={"member": "rwanda", "participant": "Aline Uwase", "email": "aline@rw.example"},
    ).json()["id"]
    r = client.post(f"/api/enrolments/{eid}/completion", headers=kenya.headers)
    assert r.status_code == 409  # not attended yet
    r = client.post(
        f"/api/enrolments/{eid}/attendance", json={"sessions_attended": 1}, headers=rwanda.headers
    )
    assert r.status_code == 403  # only the host records attendance
    client.post(
        f"/api/enrolments/{eid}/attendance", json={"sessions_attended": 1}, headers=kenya.headers
    )
    certificate = client.post(f"/api/enrolments/{eid}/completion", headers=kenya.headers).json()
    assert certificate["record"]["participant"] == "Aline Uwase"
    key = public_key_base64(load_or_create(settings))
    assert enrolment.verify_certificate(certificate, key)
    assert client.post("/api/completions/verify", json=certificate).json()["valid"] is True

    forged = json.loads(json.dumps(certificate))
    forged["record"]["sessions_attended"] = 5
    assert not enrolment.verify_certificate(forged, key)
    assert client.post("/api/completions/verify", json=forged).json()["valid"] is False

    path = tmp_path / "certificate.json"
    path.write_text(json.dumps(certificate))
    ok = CliRunner().invoke(app, ["programme", "verify", str(path), "--key", key])
    assert ok.exit_code == 0 and "valid" in ok.output
    path.write_text(json.dumps(forged))
    bad = CliRunner().invoke(app, ["programme", "verify", str(path), "--key", key])
    assert bad.exit_code == 2


def test_icalendar_export(client: TestClient, make) -> None:
    kenya = make.delegate("kenya", "KE")
    body = _programme_body("kenya")
    body["sessions"].append(
        {
            "title": "Day 2",
            "starts": _soon(11),
            "ends": _soon(11).replace("09:", "16:"),
            "timezone": "Africa/Nairobi",
        }
    )
    pid = client.post("/api/programmes", json=body, headers=kenya.headers).json()["id"]
    r = client.get(f"/api/programmes/{pid}/calendar.ics")
    assert r.headers["content-type"].startswith("text/calendar")
    events = [c for c in Calendar.from_ical(r.content).walk() if c.name == "VEVENT"]
    assert len(events) == 2
    start = events[0].decoded("dtstart")
    assert start.hour == 9 and str(start.tzinfo) == "Africa/Nairobi"


def test_programme_pages_and_enrolment_from_the_page(client: TestClient, make, db) -> None:
    import re

    kenya = make.delegate("kenya", "KE")
    nepal = make.delegate("nepal", "NP")
    pid = client.post(
        "/api/programmes", json=_programme_body("kenya"), headers=kenya.headers
    ).json()["id"]
    assert "Federated learning in practice" in client.get("/programmes").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/sign-in").text).group(1)
    client.post("/sign-in", data={"csrf": csrf, "token": nepal.token, "next": "/"})
    page = client.get(f"/programmes/{pid}")
    assert "Enrol" in page.text
    r = client.post(
        f"/programmes/{pid}/enrol",
        data={"csrf": csrf, "participant": "Sita", "email": "sita@np.example"},
    )
    assert r.status_code == 200 and "Sita" in r.text
    member = db.scalars(select(Member).where(Member.slug == "nepal")).one()
    assert (
        db.scalar(
            select(func.count()).select_from(Enrolment).where(Enrolment.member_id == member.id)
        )
        == 1
    )
