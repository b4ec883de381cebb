"""Gated and private content stays behind its gate on every route that serves bytes or their
metadata, including those that address content by hash (hashes are public: the log names
them). A blob that a public repository also holds is public."""

from __future__ import annotations

import hashlib

import pytest

from .conftest import publish

GATED_CARD = b"---\nlicense: cc-by-4.0\ngated: manual\n---\n# Voices\n"
SECRET = b"id,text\n1,siri ya mtungi\n" * 50


@pytest.fixture
def gated(client, make):
    """kenya's gated dataset holding SECRET; a requester whom kenya approved; an outsider."""
    kenya = make.delegate("kenya", "KE")
    approved = make.observer()
    outsider = make.observer()
    revision = publish(
        client,
        kenya,
        "kenya",
        "voices",
        {"README.md": GATED_CARD, "clips.csv": SECRET},
        kind="dataset",
    )["revision"]
    granted = client.post(
        "/api/datasets/kenya/voices/user-access-request/grant",
        json={"user": approved.person.email},
        headers=kenya.headers,
    )
    assert granted.status_code == 200, granted.text
    return kenya, approved, outsider, revision


def _routes(client, revision: str) -> dict[str, tuple[str, str]]:
    """Every route that serves the gated file's bytes or leads to them, by method and path."""
    sha = hashlib.sha256(SECRET).hexdigest()
    detail = f"/api/commons/repos/dataset/kenya/voices/revisions/{revision}"
    return {
        "content": ("GET", f"/api/commons/content/{sha}"),
        "content (head)": ("HEAD", f"/api/commons/content/{sha}"),
        "content (counted)": ("GET", f"/api/commons/content/{sha}?repo=kenya/voices&kind=dataset"),
        "resolve by commit": ("GET", f"/datasets/kenya/voices/resolve/{revision}/clips.csv"),
        "resolve by branch": ("GET", "/datasets/kenya/voices/resolve/main/clips.csv"),
        "revision detail": ("GET", detail),
    }


def _chunk_route(client, owner_headers, revision: str) -> tuple[str, str]:
    sha = hashlib.sha256(SECRET).hexdigest()
    detail = client.get(
        f"/api/commons/repos/dataset/kenya/voices/revisions/{revision}", headers=owner_headers
    ).json()
    chunk = next(f for f in detail["files"] if f["path"] == "clips.csv")["chunks"][0][0]
    return "GET", f"/api/commons/chunks/{chunk}?blob={sha}"


def test_an_outsider_gets_gated_repo_on_every_route_by_hash(client, gated) -> None:
    kenya, _approved, outsider, revision = gated
    routes = {**_routes(client, revision), "chunk": _chunk_route(client, kenya.headers, revision)}
    for who, headers in (("anonymous", {}), ("outsider", outsider.headers)):
        for label, (method, path) in routes.items():
            answer = client.request(method, path, headers=headers, follow_redirects=False)
            assert answer.status_code == 403, (who, label, answer.status_code)
            assert answer.headers["X-Error-Code"] == "GatedRepo", (who, label)


def test_the_owner_and_the_approved_requester_get_the_bytes(client, gated) -> None:
    kenya, approved, _outsider, revision = gated
    method, chunk_path = _chunk_route(client, kenya.headers, revision)
    for who, actor in (("owner", kenya), ("approved", approved)):
        routes = _routes(client, revision)
        for label in ("content", "content (counted)", "resolve by commit"):
            method, path = routes[label]
            answer = client.request(method, path, headers=actor.headers)
            assert answer.status_code == 200, (who, label, answer.text)
            assert answer.content == SECRET, (who, label)
        chunk = client.get(chunk_path, headers=actor.headers)
        assert chunk.status_code == 200 and SECRET.startswith(chunk.content[:16]), who


def test_a_blob_a_public_repository_also_holds_is_served_to_anyone(client, make, gated) -> None:
    _kenya, _approved, outsider, _revision = gated
    ghana = make.delegate("ghana", "GH")
    publish(
        client, ghana, "ghana", "open", {"README.md": b"---\nlicense: mit\n---\n", "c.csv": SECRET}
    )
    sha = hashlib.sha256(SECRET).hexdigest()
    for headers in ({}, outsider.headers):
        answer = client.get(f"/api/commons/content/{sha}", headers=headers)
        assert answer.status_code == 200 and answer.content == SECRET


def test_a_gated_file_cannot_be_copied_by_its_hash(client, make, gated) -> None:
    """The log names the gated file's SHA-256; a commit naming it without its bytes would copy
    it into a readable repository."""
    ghana = make.delegate("ghana", "GH")
    sha = hashlib.sha256(SECRET).hexdigest()
    created = client.post(
        "/api/commons/repos",
        headers=ghana.headers,
        json={"owner": "ghana", "name": "copy", "kind": "model", "licence": "mit"},
    )
    assert created.status_code == 201
    commit = client.post(
        "/api/commons/repos/model/ghana/copy/commits",
        headers=ghana.headers,
        json={"files": {"stolen.csv": sha}, "message": "copy"},
    )
    assert commit.status_code == 403, commit.text
    assert commit.json()["error"]["code"] == "commons.content_not_yours"
    # Through the Hub protocol: the LFS batch does not skip the upload of bytes ghana may not
    # read ("stored already"), and a commit naming them is refused likewise.
    batch = client.post(
        "/ghana/copy.git/info/lfs/objects/batch",
        headers=ghana.headers,
        json={"operation": "upload", "objects": [{"oid": sha, "size": len(SECRET)}]},
    )
    assert "actions" in batch.json()["objects"][0]
    assert client.get(f"/api/commons/content/{sha}", headers=ghana.headers).status_code == 403


def test_sending_the_bytes_proves_having_them(client, make, gated) -> None:
    """Who has the bytes may publish them: the upload names the repository they are for."""
    ghana = make.delegate("ghana", "GH")
    published = publish(client, ghana, "ghana", "own", {"README.md": b"---\nlicense: mit\n---\n"})
    assert published["revision"]
    sha = hashlib.sha256(SECRET).hexdigest()
    upload = client.post(
        "/api/commons/uploads",
        params={"filename": "c.csv", "repository": "model/ghana/own"},
        content=SECRET,
        headers=ghana.headers,
    )
    assert upload.status_code == 201, upload.text
    commit = client.post(
        "/api/commons/repos/model/ghana/own/commits",
        headers=ghana.headers,
        json={"files": {"c.csv": sha}, "message": "mine too"},
    )
    assert commit.status_code == 201, commit.text


def test_content_no_commit_has_named_is_not_served(client, make) -> None:
    kenya = make.delegate("kenya", "KE")
    upload = client.post(
        "/api/commons/uploads",
        params={"filename": "a.txt"},
        content=b"draft",
        headers=kenya.headers,
    )
    sha = upload.json()["sha256"]
    answer = client.get(f"/api/commons/content/{sha}")
    assert answer.status_code == 404
    assert answer.headers["X-Error-Code"] == "EntryNotFound"


def test_a_full_audit_passes_with_gated_private_and_deleted_repositories(
    client, live_server, make, gated, tmp_path
) -> None:
    """An outside auditor is shown neither gated, private nor deleted publications; the log
    says which, so `concord audit --full` passes instead of calling the hub dishonest."""
    from concord.commons import served
    from concord.ledger.audit import audit

    kenya, _approved, _outsider, _revision = gated
    card = {"README.md": b"---\nlicense: mit\n---\n"}
    publish(client, kenya, "kenya", "quiet", card)
    publish(client, kenya, "kenya", "gone", card)
    publish(client, kenya, "kenya", "open", card)
    made_private = client.put(
        "/api/models/kenya/quiet/settings", json={"visibility": "private"}, headers=kenya.headers
    )
    assert made_private.status_code == 200, made_private.text
    deleted = client.request(
        "DELETE", "/api/repos/delete", json={"name": "gone"}, headers=kenya.headers
    )
    assert deleted.status_code == 200, deleted.text

    report = audit(live_server, full=True, state=tmp_path / "audit", checks=[served.check])

    assert report.full
