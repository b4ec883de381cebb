"""Pages: a proposal with its opinion map, statement votes, and a ballot signed with OpenSSL
outside the browser and pasted back."""

from __future__ import annotations

import base64
import html
import re
import subprocess
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from tests.governance.conftest import cast, resolution, to_ballot

from concord.governance.tables import Ballot


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match
    return match.group(1)


def sign_in(client: TestClient, actor: Any) -> str:
    token = _csrf(client.get("/sign-in").text)
    client.post("/sign-in", data={"csrf": token, "token": actor.token, "next": "/"})
    return token


def test_deliberate_and_vote_from_the_page(client: TestClient, assembly: dict[str, Any]) -> None:
    kenya = assembly["kenya"]
    ref = resolution(client, kenya)
    client.post(f"/api/proposals/{ref}/deliberation", headers=kenya.headers)
    statements = [
        "Open weights help small labs.",
        "Safety review first.",
        "Fund shared compute.",
        "Publish evaluation data.",
        "Licences must allow research.",
        "Translate model cards.",
        "Report energy use.",
    ]
    ids = [
        client.post(
            f"/api/proposals/{ref}/statements", headers=kenya.headers, json={"text": t}
        ).json()["id"]
        for t in statements
    ]
    # two camps over the first two statements, everyone agrees with the rest
    for slug, actor in assembly.items():
        camp = slug in ("kenya", "brazil", "india")
        for j, sid in enumerate(ids):
            vote = ("agree" if camp else "disagree") if j < 2 else "agree"
            if j == 1:
                vote = "disagree" if camp else "agree"
            client.post(
                f"/api/proposals/{ref}/statements/{sid}/votes",
                headers=actor.headers,
                json={"vote": vote},
            )
    csrf = sign_in(client, assembly["france"])
    page = client.get(f"/proposals/{ref}")
    assert page.status_code == 200
    assert page.text.count("<circle") == 5
    assert "Common ground" in page.text and "Report energy use." in page.text
    # a vote from the page, without JavaScript
    changed = client.post(
        f"/proposals/{ref}/statements/{ids[0]}/vote",
        data={"csrf": csrf, "vote": "agree"},
        follow_redirects=False,
    )
    assert changed.status_code == 303
    opinion = client.get(f"/api/proposals/{ref}/map").json()
    first = next(s for s in opinion["statements"] if s["id"] == ids[0])
    assert first["agree"] == 4 and first["disagree"] == 1
    added = client.post(f"/proposals/{ref}/statements", data={"csrf": csrf, "text": "Share tools."})
    assert added.status_code == 200 and "Share tools." in added.text
    assert client.get("/proposals").text.count(ref) >= 1


def test_ballot_signed_outside_the_browser(
    client: TestClient, assembly: dict[str, Any], tmp_path: Path, db: Session
) -> None:
    kenya = assembly["kenya"]
    ref = resolution(client, kenya)
    to_ballot(client, kenya, ref)
    csrf = sign_in(client, kenya)
    prepared = client.get(f"/proposals/{ref}", params={"choice": "yes"})
    text = html.unescape(re.search(r'<pre id="payload">(.*?)</pre>', prepared.text, re.S).group(1))
    payload = html.unescape(re.search(r'name="payload" value="([^"]+)"', prepared.text).group(1))
    assert "openssl pkeyutl" in prepared.text
    key_file = tmp_path / "kenya.pem"
    key_file.write_bytes(
        kenya.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    message = tmp_path / "ballot.json"
    message.write_bytes(text.encode())
    signature = subprocess.run(
        ["openssl", "pkeyutl", "-sign", "-rawin", "-inkey", str(key_file), "-in", str(message)],
        check=True,
        capture_output=True,
    ).stdout
    bad = client.post(
        f"/proposals/{ref}/ballot",
        data={"csrf": csrf, "payload": payload, "signature": base64.b64encode(b"x" * 64).decode()},
    )
    assert bad.status_code == 422
    cast_ = client.post(
        f"/proposals/{ref}/ballot",
        data={"csrf": csrf, "payload": payload, "signature": base64.b64encode(signature).decode()},
        follow_redirects=False,
    )
    assert cast_.status_code == 303
    assert db.scalars(select(Ballot.choice)).all() == ["yes"]
    for slug in ("brazil", "india", "france", "germany"):
        cast(client, assembly[slug], ref, "yes")
    client.post(f"/api/proposals/{ref}/close", headers=kenya.headers)
    result = client.get(f"/proposals/{ref}/result")
    assert result.status_code == 200
    assert "global-north" in result.text and "bloc_majority" in result.text
    assert result.text.count("/members/") >= 5
