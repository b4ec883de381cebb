"""Proxies from the pages: the delegate sees the canonical proxy to sign, signs it with OpenSSL
off the page, pastes the signature; the hub verifies and records it; the delegate revokes it with
a button until the ballot closes. No JavaScript, CSRF-checked, errors coded, translated."""

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
from tests.governance.test_pages import sign_in

from concord.governance.tables import Proxy
from concord.ledger.tables import LogEntry


def _openssl_sign(actor: Any, text: str, tmp_path: Path) -> str:
    """The base64 signature of `text` made by OpenSSL with the member's key, as a delegate
    would make it on their own machine."""
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(
        actor.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    message = tmp_path / "proxy.json"
    message.write_bytes(text.encode())
    signature = subprocess.run(
        ["openssl", "pkeyutl", "-sign", "-rawin", "-inkey", str(key_file), "-in", str(message)],
        check=True,
        capture_output=True,
    ).stdout
    return base64.b64encode(signature).decode()


def _prepare(client: TestClient, ref: str, holder: str) -> tuple[str, str]:
    """The text to sign and the form's payload, from the page that prepares the proxy."""
    page = client.get(f"/proposals/{ref}", params={"holder": holder})
    assert page.status_code == 200, page.text
    text = re.search(r'<pre id="proxy-payload">(.*?)</pre>', page.text, re.S)
    form = re.search(
        r'action="/proposals/[^"]+/proxies">.*?name="payload" value="([^"]+)"', page.text, re.S
    )
    assert text and form, "the page shows no proxy to sign"
    return html.unescape(text.group(1)), html.unescape(form.group(1))


def _code(response: Any) -> str:
    return str(response.headers.get("x-error-code", ""))


def test_a_proxy_signed_with_openssl_is_given_and_revoked_from_the_page(
    client: TestClient, assembly: dict[str, Any], tmp_path: Path, db: Session
) -> None:
    # Prepare: a ballot is open; Kenya's delegate is signed in
    kenya = assembly["kenya"]
    ref = resolution(client, kenya)
    to_ballot(client, kenya, ref)
    csrf = sign_in(client, kenya)
    # Execute: the page prepares the proxy to Brazil; OpenSSL signs it off the page
    text, payload = _prepare(client, ref, "brazil")
    signature = _openssl_sign(kenya, text, tmp_path)
    forged = client.post(
        f"/proposals/{ref}/proxies", data={"payload": payload, "signature": signature}
    )
    bad = client.post(
        f"/proposals/{ref}/proxies",
        data={"csrf": csrf, "payload": payload, "signature": base64.b64encode(b"x" * 64).decode()},
    )
    given = client.post(
        f"/proposals/{ref}/proxies",
        data={"csrf": csrf, "payload": payload, "signature": signature},
        follow_redirects=False,
    )
    # Assert: no CSRF token, no proxy; a wrong signature is refused with its code; the signed
    # one is recorded, its payload and signature logged as signed
    assert forged.status_code == 403 and _code(forged) == "auth.csrf"
    assert bad.status_code == 422 and _code(bad) == "signature.invalid"
    assert given.status_code == 303 and given.headers["location"].endswith("#proxy")
    row = db.scalars(select(Proxy)).one()
    assert (row.proposal, row.signature, row.revoked_at) == (ref, signature, None)
    logged = db.scalars(select(LogEntry).where(LogEntry.kind == "governance.proxy")).one()
    assert logged.index == row.log_index
    page = client.get(f"/proposals/{ref}")
    assert f'action="/proposals/{ref}/proxies/{row.id}/revoke"' in page.text
    # Execute: the delegate revokes it with the button
    revoked = client.post(
        f"/proposals/{ref}/proxies/{row.id}/revoke", data={"csrf": csrf}, follow_redirects=False
    )
    # Assert: revoked and logged; the button is gone
    assert revoked.status_code == 303
    db.expire_all()
    assert db.get(Proxy, row.id).revoked_at is not None  # type: ignore[union-attr]
    assert db.scalars(select(LogEntry).where(LogEntry.kind == "governance.proxy_revoked")).one()
    assert "/revoke" not in client.get(f"/proposals/{ref}").text


def test_a_proxy_from_the_page_counts_and_cannot_be_revoked_after_the_close(
    client: TestClient, assembly: dict[str, Any], tmp_path: Path
) -> None:
    # Prepare: Kenya gives Brazil its proxy from the page
    kenya = assembly["kenya"]
    ref = resolution(client, kenya)
    to_ballot(client, kenya, ref)
    csrf = sign_in(client, kenya)
    text, payload = _prepare(client, ref, "brazil")
    signature = _openssl_sign(kenya, text, tmp_path)
    client.post(
        f"/proposals/{ref}/proxies", data={"csrf": csrf, "payload": payload, "signature": signature}
    )
    proxy_id = client.get("/api/proxies").json()[0]["id"]
    # Execute: everyone but Kenya votes; the ballot closes
    for slug in ("brazil", "india", "france", "germany"):
        cast(client, assembly[slug], ref, "yes")
    decided = client.post(f"/api/proposals/{ref}/close", headers=kenya.headers).json()
    late = client.post(f"/proposals/{ref}/proxies/{proxy_id}/revoke", data={"csrf": csrf})
    # Assert: Brazil's ballot counted for Kenya too; the proxy is final once the ballot closed
    assert [(p["member"], p["holder"], p["counted"]) for p in decided["arithmetic"]["proxies"]] == [
        ("kenya", "brazil", True)
    ]
    assert late.status_code == 409 and _code(late) == "proxy.final"
    page = client.get(f"/proposals/{ref}").text
    assert "/revoke" not in page and 'name="holder"' not in page


def test_the_page_refuses_a_bad_holder_before_signing_and_speaks_french(
    client: TestClient, assembly: dict[str, Any]
) -> None:
    # Prepare
    kenya = assembly["kenya"]
    ref = resolution(client, kenya)
    to_ballot(client, kenya, ref)
    sign_in(client, kenya)
    # Execute
    own = client.get(f"/proposals/{ref}", params={"holder": "kenya"})
    unknown = client.get(f"/proposals/{ref}", params={"holder": "atlantis"})
    other = client.post(
        f"/proposals/{ref}/proxies",
        data={"csrf": sign_in(client, kenya), "payload": '{"proposal": "CR-1999-1"}'},
    )
    french = client.get(f"/proposals/{ref}", headers={"Accept-Language": "fr"})
    # Assert
    assert own.status_code == 422 and _code(own) == "proxy.invalid"
    assert unknown.status_code == 404 and _code(unknown) == "member.unknown"
    assert other.status_code == 422 and _code(other) == "proxy.invalid"
    assert "Préparer la procuration" in html.unescape(french.text)
