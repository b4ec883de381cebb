"""The public transparency log names no private repository, file path or file hash: entries
about a repository that is private when it acts carry HMAC commitments under its secret salt,
which making it public reveals (docs/commons.md, "Private repositories in the public log")."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx
from typer.testing import CliRunner

from concord.cli import app
from concord.commons.pull import pull
from concord.ledger.log import canonical_json

from .conftest import publish, safetensors_bytes

CARD = b"---\nlicense: mit\n---\n# Kept quiet\n"
WEIGHTS = safetensors_bytes(seed=7)
NOTES = b"id,text\n1,siri ya mtungi\n" * 20


def _public_log(client) -> list[dict[str, Any]]:
    """Every entry's body as an anonymous reader gets it, in log order."""
    bodies: list[dict[str, Any]] = []
    while True:
        page = client.get("/api/log/entries", params={"start": len(bodies)})
        assert page.status_code == 200, page.text
        if not page.json():
            return bodies
        bodies += [json.loads(e["body"]) for e in page.json()]


def _create_private(client, actor, name: str) -> None:
    made = client.post(
        "/api/repos/create", json={"name": name, "private": True}, headers=actor.headers
    )
    assert made.status_code == 200, made.text


def _hmac(salt: str, message: str) -> str:
    return "private:" + hmac.new(bytes.fromhex(salt), message.encode(), hashlib.sha256).hexdigest()


def test_the_public_log_names_no_private_repository_path_or_hash(
    client, live_server, make, tmp_path
) -> None:
    from concord.commons import served
    from concord.ledger.audit import audit

    kenya = make.delegate("kenya", "KE")
    reader = make.observer()
    files = {"README.md": CARD, "weights-of-kept-secret.safetensors": WEIGHTS}
    _create_private(client, kenya, "quiet-archive")
    revision = publish(client, kenya, "kenya", "quiet-archive", files, create=False)["revision"]
    for method, path, body in (
        ("POST", "branch/dev-hidden-branch", {}),
        ("POST", f"tag/{revision}", {"tag": "v1-hidden-tag"}),
        ("DELETE", "branch/dev-hidden-branch", None),
        ("POST", "user-access-request/grant", {"user": reader.person.email}),
    ):
        answer = client.request(
            method, f"/api/models/kenya/quiet-archive/{path}", json=body, headers=kenya.headers
        )
        assert answer.status_code == 200, (path, answer.text)
    _create_private(client, kenya, "short-lived-secret")
    publish(client, kenya, "kenya", "short-lived-secret", {"README.md": CARD}, create=False)
    gone = client.request(
        "DELETE", "/api/repos/delete", json={"name": "short-lived-secret"}, headers=kenya.headers
    )
    assert gone.status_code == 200, gone.text
    publish(client, kenya, "kenya", "open-model", {"README.md": CARD, "notes.csv": NOTES})

    log = _public_log(client)
    report = audit(live_server, full=True, state=tmp_path / "audit", checks=[served.check])

    text = json.dumps(log)
    hidden = [
        "quiet-archive",
        "short-lived-secret",
        "weights-of-kept-secret",
        "dev-hidden-branch",
        "v1-hidden-tag",
        hashlib.sha256(WEIGHTS).hexdigest(),
        revision,
    ]
    assert [word for word in hidden if word in text] == []
    about_private = {
        body["kind"]
        for body in log
        if str((body.get("content") or {}).get("repository", "")).startswith("private:")
    }
    assert about_private == {
        "commons.visibility_changed",
        "commons.published",
        "commons.ref_created",
        "commons.ref_deleted",
        "commons.access_decided",
        "commons.deleted",
    }
    published = [
        b["content"]
        for b in log
        if b["kind"] == "commons.published" and "file_count" in b["content"]
    ]
    assert [p["file_count"] for p in published] == [2, 1]
    assert "kenya/open-model" in text and hashlib.sha256(NOTES).hexdigest() in text
    assert report.full


def test_making_a_private_repository_public_reveals_the_salt_of_its_commitments(
    client, live_server, make, tmp_path
) -> None:
    from concord.commons import served
    from concord.ledger.audit import audit

    kenya = make.delegate("kenya", "KE")
    files = {"README.md": CARD, "weights.safetensors": WEIGHTS}
    _create_private(client, kenya, "soon-open")
    tree = {
        path: hashlib.sha256(data).hexdigest() for path, data in files.items()
    }  # what the commit logs, committed
    publish(client, kenya, "kenya", "soon-open", files, create=False)
    before = len(_public_log(client))
    opened = client.put(
        "/api/models/kenya/soon-open/settings",
        json={"visibility": "public"},
        headers=kenya.headers,
    )
    assert opened.status_code == 200, opened.text
    publish(client, kenya, "kenya", "soon-open", {"notes.csv": NOTES}, create=False)
    closed = client.put(
        "/api/models/kenya/soon-open/settings",
        json={"visibility": "private"},
        headers=kenya.headers,
    )
    assert closed.status_code == 200, closed.text
    publish(client, kenya, "kenya", "soon-open", {"more.csv": NOTES + b"2,x\n"}, create=False)

    log = _public_log(client)
    report = audit(live_server, full=True, state=tmp_path / "audit", checks=[served.check])

    created, first = log[before - 2]["content"], log[before - 1]["content"]
    reveal = log[before]["content"]
    assert log[before]["kind"] == "commons.visibility_changed"
    assert (reveal["repository"], reveal["private"]) == ("kenya/soon-open", False)
    commitment = _hmac(reveal["salt"], "model/kenya/soon-open")
    assert created["repository"] == first["repository"] == reveal["commitment"] == commitment
    assert first["files"] == _hmac(reveal["salt"], "files=" + canonical_json(tree).decode())
    # Public again, then private again: a new salt, so the revealed one opens nothing later.
    went_private, last = log[-2]["content"], log[-1]["content"]
    assert (went_private["repository"], went_private["private"]) == ("kenya/soon-open", True)
    assert last["repository"].startswith("private:") and last["repository"] != commitment
    assert report.full


def test_a_pull_of_a_private_revision_has_no_logged_root_and_checks_sha256(
    client, live_server, make, tmp_path
) -> None:
    # Prepare: a private repository pushed with the CLI
    kenya = make.delegate("kenya", "KE")
    _create_private(client, kenya, "quiet-asr")
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(WEIGHTS)
    (folder / "README.md").write_bytes(CARD)
    pushed = CliRunner().invoke(
        app,
        ["push", "kenya/quiet-asr", str(folder), "--hub", live_server, "--token", kenya.token],
    )
    assert pushed.exit_code == 0, pushed.output
    # Execute
    detail = httpx.get(
        f"{live_server}/api/commons/repos/model/kenya/quiet-asr/revisions/main",
        headers=kenya.headers,
    ).json()
    report = pull(live_server, "kenya/quiet-asr", to=tmp_path / "api", token=kenya.token)
    said = CliRunner().invoke(
        app,
        [
            "pull",
            "kenya/quiet-asr",
            "--hub",
            live_server,
            "--token",
            kenya.token,
            "--to",
            str(tmp_path / "cli"),
        ],
    )
    # Assert: no root is logged for it, and the pull says it checked the SHA-256 instead
    assert [f.get("chunk_root") for f in detail["files"]] == [None, None]
    assert (tmp_path / "api" / "model.safetensors").read_bytes() == WEIGHTS
    assert report.sha256_checked == ["README.md", "model.safetensors"]
    assert said.exit_code == 0, said.output
    assert "checked by SHA-256" in said.output
