"""Amendments as edits of the original text: line diffs, furthest first, a three-way merge
of the adopted ones, its hash in the decision, and conflicts refused with the lines named."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from tests.governance.conftest import cast

from concord.governance import ballots, redlines
from concord.ledger.tables import LogEntry

ORIGINAL = "1. Members share models.\n2. Members share data.\n3. Members train together."


def drafted(client: TestClient, sponsor: Any) -> str:
    made = client.post(
        "/api/proposals",
        headers=sponsor.headers,
        json={"kind": "resolution", "title": "Sharing", "texts": {"en": ORIGINAL}},
    )
    ref = str(made.json()["reference"])
    assert client.post(f"/api/proposals/{ref}/deliberation", headers=sponsor.headers)
    return ref


def amend(client: TestClient, actor: Any, ref: str, text: str) -> int:
    made = client.post(
        f"/api/proposals/{ref}/amendments",
        headers=actor.headers,
        json={"language": "en", "text": text},
    )
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


def test_adopted_amendments_merge_into_the_original_and_recount(
    client: TestClient, assembly: dict[str, Any], db: Session
) -> None:
    # Prepare: a one-line edit and a two-line edit of different lines
    kenya = assembly["kenya"]
    ref = drafted(client, kenya)
    small = amend(
        client, assembly["france"], ref, ORIGINAL.replace("share data", "share open data")
    )
    large = amend(
        client,
        assembly["brazil"],
        ref,
        ORIGINAL.replace("share models.", "share open models.") + "\n4. Members report.",
    )
    listed = {a["id"]: a for a in client.get(f"/api/proposals/{ref}/amendments").json()}
    # Execute: the smaller one first is refused; the larger one first
    early = client.post(f"/api/proposals/{ref}/amendments/{small}/accept", headers=kenya.headers)
    assert early.status_code == 409
    assert early.json()["error"]["code"] == "amendment.out_of_order"
    for amendment in (large, small):
        accepted = client.post(
            f"/api/proposals/{ref}/amendments/{amendment}/accept", headers=kenya.headers
        )
        assert accepted.status_code == 200, accepted.text
    assert client.post(f"/api/proposals/{ref}/ballot", headers=kenya.headers, json={})
    for slug in ("kenya", "brazil", "france", "germany"):
        assert cast(client, assembly[slug], ref, "yes").status_code == 201
    decided = client.post(f"/api/proposals/{ref}/close", headers=kenya.headers).json()
    # Assert: the diffs, the merged text and its hash, and the recount's check of it
    assert listed[small]["distance"] == 2 and listed[large]["distance"] == 3
    assert {"op": "delete", "line": "2. Members share data."} in listed[small]["diff"]
    assert {"op": "insert", "line": "2. Members share open data."} in listed[small]["diff"]
    merged = (
        "1. Members share open models.\n2. Members share open data.\n"
        "3. Members train together.\n4. Members report."
    )
    assert client.get(f"/api/proposals/{ref}").json()["texts"]["en"] == merged
    digest = hashlib.sha256(merged.encode()).hexdigest()
    assert decided["arithmetic"]["texts_sha256"]["en"] == digest
    bodies = [json.loads(b) for b in db.scalars(select(LogEntry.body).order_by(LogEntry.index))]
    assert ballots.recount(bodies)[0]["matches"]
    decision = next(b for b in bodies if b["kind"] == "governance.decision")
    decision["content"]["arithmetic"]["texts_sha256"]["en"] = redlines.digest(ORIGINAL)
    tampered = ballots.recount(bodies)[0]
    assert not tampered["matches"]
    assert tampered["differences"][0]["field"] == "texts_sha256"


def test_a_conflicting_amendment_is_refused_with_the_lines(
    client: TestClient, assembly: dict[str, Any]
) -> None:
    kenya = assembly["kenya"]
    ref = drafted(client, kenya)
    first = amend(
        client, assembly["brazil"], ref, ORIGINAL.replace("share data.", "share all data.\nNow.")
    )
    second = amend(
        client, assembly["france"], ref, ORIGINAL.replace("share data.", "share some data.")
    )
    accepted = client.post(f"/api/proposals/{ref}/amendments/{first}/accept", headers=kenya.headers)
    assert accepted.status_code == 200
    refused = client.post(f"/api/proposals/{ref}/amendments/{second}/accept", headers=kenya.headers)
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["code"] == "amendment.conflict"
    assert "2–2" in error["message"] and str(first) in error["message"]
    # declining it stays possible
    declined = client.post(
        f"/api/proposals/{ref}/amendments/{second}/decline", headers=kenya.headers
    )
    assert declined.status_code == 200


def test_the_proposal_page_shows_tracked_changes(
    client: TestClient, assembly: dict[str, Any]
) -> None:
    ref = drafted(client, assembly["kenya"])
    amend(client, assembly["france"], ref, ORIGINAL.replace("share data", "share open data"))
    page = client.get(f"/proposals/{ref}", headers={"Accept-Language": "es"})
    assert '<del aria-label="eliminado">− 2. Members share data.</del>' in page.text
    assert '<ins aria-label="insertado">+ 2. Members share open data.</ins>' in page.text


def test_merge_applies_changes_to_the_common_original() -> None:
    a = ORIGINAL.replace("1. Members", "1. All members")
    b = ORIGINAL + "\n4. Done."
    assert redlines.conflict(ORIGINAL, [a, b]) is None
    assert redlines.merge(ORIGINAL, [a, b]).splitlines() == [
        "1. All members share models.",
        "2. Members share data.",
        "3. Members train together.",
        "4. Done.",
    ]
    clash = redlines.conflict(ORIGINAL, [a, ORIGINAL.replace("1. Members", "1. Some")])
    assert clash is not None and (clash.index, clash.earlier, clash.first_line) == (1, 0, 1)
