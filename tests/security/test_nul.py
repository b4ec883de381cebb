"""A NUL character in a JSON body is refused at the edge: PostgreSQL's text columns cannot hold
one (Schemathesis found a 500 on /api/programmes), and no person's words contain it."""

from __future__ import annotations

from typing import Any


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
