"""The members API: open reads, authenticated and authorised writes, coded errors."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from concord.ledger.tables import LogEntry
from concord.members import keys
from concord.members.tables import Member


def test_reads_are_open(client: TestClient, make) -> None:
    make.member("kenya", "KE")
    listing = client.get("/api/members")
    assert listing.status_code == 200
    assert [m["slug"] for m in listing.json()] == ["kenya"]
    kenya = client.get("/api/members/kenya").json()
    assert kenya["country"]["region"] == "Africa"
    assert kenya["country"]["global_south"] is True
    assert "global-south" in kenya["blocs"]
    assert client.get("/api/countries/BRA").json()["iso2"] == "BR"
    assert client.get("/api/openapi.json").status_code == 200


def test_admission_needs_secretariat(client: TestClient, make, db: Session) -> None:
    body = {"slug": "peru", "name": "Peru", "kind": "country", "country": "PE"}
    assert client.post("/api/members", json=body).json()["error"]["code"] == "auth.bad_token"
    observer = make.observer()
    refused = client.post("/api/members", json=body, headers=observer.headers)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "auth.role_required"
    staff = make.secretariat()
    made = client.post("/api/members", json=body, headers=staff.headers)
    assert made.status_code == 201
    again = client.post("/api/members", json=body, headers=staff.headers)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "member.duplicate"
    assert db.scalar(select(func.count()).select_from(Member)) == 1


def test_unknown_country_and_bad_body(client: TestClient, make, db: Session) -> None:
    staff = make.secretariat()
    bad = client.post(
        "/api/members",
        headers=staff.headers,
        json={"slug": "x1", "name": "X", "kind": "country", "country": "ZZ"},
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "member.unknown_country"
    extra = client.post(
        "/api/members",
        headers=staff.headers,
        json={"slug": "x1", "name": "X", "kind": "country", "country": "FR", "admin": True},
    )
    assert extra.status_code == 422
    assert extra.json()["error"]["code"] == "request.invalid"
    assert db.scalar(select(func.count()).select_from(Member)) == 0


def test_error_messages_follow_the_language(client: TestClient) -> None:
    en = client.get("/api/members/nobody").json()["error"]
    fr = client.get("/api/members/nobody", headers={"Accept-Language": "fr"}).json()["error"]
    assert en["code"] == fr["code"] == "member.unknown"
    assert en["message"] != fr["message"]


def test_standing_changes_via_api(client: TestClient, make) -> None:
    make.member("chile", "CL")
    staff = make.secretariat()
    r = client.post("/api/members/chile/suspend", json={"reason": "dues"}, headers=staff.headers)
    assert r.json()["status"] == "suspended"
    r = client.post("/api/members/chile/suspend", json={}, headers=staff.headers)
    assert r.status_code == 409
    history = client.get("/api/members/chile/history").json()
    assert [h["action"] for h in history] == ["admitted", "suspended"]


def test_key_registration_by_own_delegate_only(client: TestClient, make, db: Session) -> None:
    ghana = make.delegate("ghana", "GH")
    make.member("peru", "PE")
    new_key = keys.public_base64(keys.generate())
    other = client.post(
        "/api/members/peru/keys", json={"public_key": new_key}, headers=ghana.headers
    )
    assert other.status_code == 403
    assert other.json()["error"]["code"] == "auth.not_your_member"
    malformed = client.post(
        "/api/members/ghana/keys", json={"public_key": "AAAA"}, headers=ghana.headers
    )
    assert malformed.status_code == 422
    assert malformed.json()["error"]["code"] == "key.malformed"
    before = db.scalar(select(func.count()).select_from(LogEntry))
    ok = client.post("/api/members/ghana/keys", json={"public_key": new_key}, headers=ghana.headers)
    assert ok.status_code == 201
    listed = client.get("/api/members/ghana/keys").json()
    assert [k["retired_at"] is None for k in listed] == [False, True]
    kinds = db.scalars(select(LogEntry.kind).order_by(LogEntry.index)).all()
    assert len(kinds) == before + 1 and kinds[-1] == "key.rotated"


def test_tokens_api(client: TestClient, make) -> None:
    staff = make.secretariat()
    observer = make.observer()
    mine = client.post("/api/tokens", json={"label": "laptop", "days": 7}, headers=observer.headers)
    assert mine.status_code == 201
    secret = mine.json()["secret"]
    assert client.get("/api/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    listed = client.get("/api/tokens", headers=observer.headers).json()
    assert all("secret" not in t for t in listed)
    forbidden = client.post(
        "/api/tokens", json={"person": str(staff.person.id)}, headers=observer.headers
    )
    assert forbidden.status_code == 403
    client.delete(f"/api/tokens/{mine.json()['id']}", headers=observer.headers)
    revoked = client.get("/api/me", headers={"Authorization": f"Bearer {secret}"})
    assert revoked.status_code == 401
    assert revoked.json()["error"]["code"] == "auth.token_revoked"


def test_oversized_bodies_are_refused(client: TestClient, make, db: Session) -> None:
    staff = make.secretariat()
    huge = {"slug": "big", "name": "B", "kind": "lab", "country": "FR", "reason": "x" * 2_000_000}
    r = client.post("/api/members", json=huge, headers=staff.headers)
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "request.too_large"

    def chunks():
        for _ in range(40):
            yield b"x" * 65536

    r = client.post(
        "/api/members",
        content=chunks(),
        headers={**staff.headers, "Content-Type": "application/json"},
    )
    assert r.status_code == 413
    assert db.scalar(select(func.count()).select_from(Member)) == 0
