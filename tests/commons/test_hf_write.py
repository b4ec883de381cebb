"""The real `huggingface_hub` client writes to Concord through the Hub protocol, and what it
writes passes the same gate and lands in the same chunks as a `concord push`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import pytest
from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationCopy,
    CommitOperationDelete,
    HfApi,
    hf_hub_download,
)
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from sqlalchemy import func, select

from concord.commons.tables import Blob, Chunk, Revision
from concord.config import Settings
from concord.ledger.tables import LogEntry as Entry

from .conftest import CARD, publish, safetensors_bytes


@pytest.fixture(params=["folder", "s3"])
def settings(request, settings: Settings) -> Settings:
    """Each test twice: content in a folder, and in a bucket of a real moto S3 server."""
    if request.param == "folder":
        return settings
    bucket = request.getfixturevalue("s3_bucket")
    endpoint = request.getfixturevalue("moto_endpoint")
    return settings.model_copy(update={"storage_url": f"s3://{bucket}/hub?endpoint={endpoint}"})


@pytest.fixture(autouse=True)
def lfs_not_xet(monkeypatch, tmp_path) -> None:
    """The client reads HF_HUB_DISABLE_XET once, at import: set it where it is read. Concord
    speaks the LFS protocol; the Xet storage protocol is not implemented."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    # Likewise its cache: a file cached by another test would be served when a gate refuses.
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))


def _api(live_server: str, actor) -> HfApi:
    return HfApi(endpoint=live_server, token=actor.token)


def test_whoami_create_upload_and_read_back(live_server, make, hf_home, tmp_path) -> None:
    kenya = make.delegate("kenya", "KE")
    api = _api(live_server, kenya)
    assert api.whoami()["name"] == "kenya"
    url = api.create_repo("kenya/asr")
    assert url.endswith("/kenya/asr")
    api.create_repo("kenya/asr", exist_ok=True)  # 409 understood
    weights = safetensors_bytes(3, size=100)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.safetensors").write_bytes(weights)
    (tmp_path / "model" / "README.md").write_text(CARD)
    (tmp_path / "model" / "données").mkdir()
    (tmp_path / "model" / "données" / "notes-été.txt").write_text("bonjour")
    info = api.upload_folder(repo_id="kenya/asr", folder_path=tmp_path / "model")
    assert len(info.oid) == 40
    files = set(api.list_repo_files("kenya/asr"))
    assert files == {"model.safetensors", "README.md", "données/notes-été.txt"}
    path = hf_hub_download("kenya/asr", "données/notes-été.txt", endpoint=live_server)
    assert Path(path).read_text() == "bonjour"
    assert api.model_info("kenya/asr").card_data["license"] == "apache-2.0"
    api.upload_file(
        path_or_fileobj=b'{"hidden": 100}', path_in_repo="config.json", repo_id="kenya/asr"
    )
    api.delete_file("données/notes-été.txt", repo_id="kenya/asr")
    assert set(api.list_repo_files("kenya/asr")) == {
        "model.safetensors",
        "README.md",
        "config.json",
    }
    commits = api.list_repo_commits("kenya/asr")
    assert len(commits) == 3 and commits[-1].authors == ["kenya"]


def test_commit_operations_branches_tags_and_patterns(live_server, make, hf_home, tmp_path) -> None:
    kenya = make.delegate("kenya", "KE")
    api = _api(live_server, kenya)
    api.create_repo("kenya/speech", repo_type="dataset")
    first = api.create_commit(
        "kenya/speech",
        [
            CommitOperationAdd("README.md", b"---\nlicense: cc-by-4.0\n---\n# Speech\n"),
            CommitOperationAdd("data/a.csv", b"a,b\n1,2\n"),
            CommitOperationAdd("data/b.csv", b"a,b\n3,4\n"),
            CommitOperationAdd("logs/run.txt", b"ok\n"),
        ],
        commit_message="first",
        repo_type="dataset",
    )
    api.create_branch("kenya/speech", branch="draft", repo_type="dataset")
    api.create_tag("kenya/speech", tag="v1", revision=first.oid, repo_type="dataset")
    api.create_commit(
        "kenya/speech",
        [
            CommitOperationDelete("logs/"),
            CommitOperationAdd("data/c.csv", b"a,b\n5,6\n"),
            CommitOperationCopy("data/a.csv", "copy/a.csv"),
        ],
        commit_message="on the branch",
        repo_type="dataset",
        revision="draft",
    )
    refs = api.list_repo_refs("kenya/speech", repo_type="dataset")
    assert {b.name for b in refs.branches} == {"main", "draft"}
    assert [(t.name, t.target_commit) for t in refs.tags] == [("v1", first.oid)]
    draft = set(api.list_repo_files("kenya/speech", repo_type="dataset", revision="draft"))
    assert draft == {"README.md", "data/a.csv", "data/b.csv", "data/c.csv", "copy/a.csv"}
    assert "logs/run.txt" in api.list_repo_files("kenya/speech", repo_type="dataset", revision="v1")
    (tmp_path / "up").mkdir()
    (tmp_path / "up" / "keep.csv").write_text("x\n1\n")
    (tmp_path / "up" / "skip.txt").write_text("no")
    api.upload_folder(
        repo_id="kenya/speech",
        repo_type="dataset",
        folder_path=tmp_path / "up",
        path_in_repo="data",
        allow_patterns=["*.csv"],
        delete_patterns=["b.csv"],
    )
    main = set(api.list_repo_files("kenya/speech", repo_type="dataset"))
    assert main == {"README.md", "data/a.csv", "data/keep.csv", "logs/run.txt"}


def test_errors_are_the_clients_exceptions(live_server, make, hf_home) -> None:
    kenya = make.delegate("kenya", "KE")
    api = _api(live_server, kenya)
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("kenya/nothing")
    with pytest.raises(RepositoryNotFoundError):
        api.upload_file(path_or_fileobj=b"x", path_in_repo="a.txt", repo_id="kenya/nothing")
    api.create_repo("kenya/r")
    api.upload_file(
        path_or_fileobj=b"---\nlicense: mit\n---\n", path_in_repo="README.md", repo_id="kenya/r"
    )
    with pytest.raises(RevisionNotFoundError):
        api.list_repo_files("kenya/r", revision="nope")
    with pytest.raises(EntryNotFoundError):
        hf_hub_download("kenya/r", "absent.txt", endpoint=live_server)
    with pytest.raises(HfHubHTTPError) as unknown_token:  # not mistaken for a missing repo
        HfApi(endpoint=live_server, token="wrong").upload_file(
            path_or_fileobj=b"x", path_in_repo="a.txt", repo_id="kenya/r"
        )
    assert not isinstance(unknown_token.value, RepositoryNotFoundError)
    assert unknown_token.value.response.status_code == 401
    answer = httpx.get(f"{live_server}/api/models/kenya/nothing")
    assert answer.headers["X-Error-Code"] == "RepoNotFound"
    assert "kenya/nothing" in answer.headers["X-Error-Message"]


def test_the_gate_refuses_what_push_refuses(live_server, make, hf_home) -> None:
    kenya = make.delegate("kenya", "KE")
    ghana = make.delegate("ghana", "GH")
    api = _api(live_server, kenya)
    api.create_repo("kenya/g")
    with pytest.raises(HfHubHTTPError) as unsafe:
        api.upload_file(path_or_fileobj=b"\x80\x04K\x01.", path_in_repo="w.pt", repo_id="kenya/g")
    assert unsafe.value.response.headers["X-Error-Code"] == "commons.unsafe_format"
    with pytest.raises(HfHubHTTPError) as disguised:  # a pickle stream whatever its name
        api.upload_file(
            path_or_fileobj=b"\x80\x04K\x01." * 20, path_in_repo="w.txt", repo_id="kenya/g"
        )
    assert disguised.value.response.headers["X-Error-Code"] == "commons.unsafe_format"
    with pytest.raises(HfHubHTTPError) as unlicensed:  # no card has named a licence yet
        api.upload_file(path_or_fileobj=b"hello", path_in_repo="a.txt", repo_id="kenya/g")
    assert unlicensed.value.response.headers["X-Error-Code"] == "commons.missing_licence"
    for bad in ("a/\u202eexe.txt", "a\\b.txt", "a//b.txt", "tab\there.txt"):
        with pytest.raises(HfHubHTTPError) as named:
            api.upload_file(path_or_fileobj=b"x", path_in_repo=bad, repo_id="kenya/g")
        assert named.value.response.headers["X-Error-Code"] == "commons.bad_path", bad
    for bad in ("../escape.txt", "/etc/passwd"):  # the client refuses these itself; we too
        answer = httpx.post(
            f"{live_server}/api/models/kenya/g/preupload/main",
            json={"files": [{"path": bad, "sample": "", "size": 1}]},
            headers=kenya.headers,
        )
        assert answer.headers["X-Error-Code"] == "commons.bad_path", bad
    with pytest.raises(HfHubHTTPError) as stranger:  # ghana's delegate may not write to kenya's
        _api(live_server, ghana).upload_file(
            path_or_fileobj=b"x", path_in_repo="a.txt", repo_id="kenya/g"
        )
    assert stranger.value.response.status_code == 403
    assert _api(live_server, kenya).list_repo_refs("kenya/g").branches == []


def test_large_file_goes_through_lfs_and_dedups_with_push(
    client, live_server, make, hf_home, sessions, tmp_path
) -> None:
    kenya = make.delegate("kenya", "KE")
    data = safetensors_bytes(5, size=1700)  # 11.6 MB: above the client's LFS threshold
    card = b"---\nlicense: apache-2.0\n---\n# Big\n"
    api = _api(live_server, kenya)
    api.create_repo("kenya/hub")
    folder = tmp_path / "to-upload"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(data)
    (folder / "README.md").write_bytes(card)
    done = api.upload_folder(repo_id="kenya/hub", folder_path=folder)
    with sessions() as db:
        chunks_after_hub = db.scalar(select(func.count()).select_from(Chunk))
        blob = db.get(Blob, hashlib.sha256(data).hexdigest())
        assert blob is not None and blob.size == len(data)
        assert sum(length for _name, length in blob.chunks) == len(data)
        assert len(blob.chunks) > 1  # cut into content-defined chunks, not stored whole
    pushed = publish(
        client, kenya, "kenya", "pushed", {"model.safetensors": data, "README.md": card}
    )
    with sessions() as db:
        ours = db.get(Revision, done.oid)
        theirs = db.get(Revision, pushed["revision"])
        assert ours is not None and theirs is not None
        assert ours.files == theirs.files  # same paths, same SHA-256s
        # The push of the same bytes found every chunk stored already by the Hub upload.
        assert db.scalar(select(func.count()).select_from(Chunk)) == chunks_after_hub
        kinds = [e.kind for e in db.scalars(select(Entry).order_by(Entry.index)).all()]
        assert kinds.count("commons.published") == 2
    assert (
        Path(hf_hub_download("kenya/hub", "model.safetensors", endpoint=live_server)).read_bytes()
        == data
    )


def test_listing_search_filter_sort_and_pages(client, live_server, make, hf_home) -> None:
    kenya = make.delegate("kenya", "KE")
    ghana = make.delegate("ghana", "GH")
    publish(client, kenya, "kenya", "swahili-asr", {"README.md": CARD.encode()})
    publish(client, kenya, "kenya", "plain", {"a.txt": b"a"})
    publish(client, ghana, "ghana", "twi-asr", {"a.txt": b"b"})
    for _ in range(3):
        client.get("/kenya/plain/resolve/main/a.txt")
    api = HfApi(endpoint=live_server)
    assert {m.id for m in api.list_models(search="asr")} == {"kenya/swahili-asr", "ghana/twi-asr"}
    assert {m.id for m in api.list_models(author="kenya")} == {"kenya/swahili-asr", "kenya/plain"}
    assert [m.id for m in api.list_models(filter="sw")] == ["kenya/swahili-asr"]
    assert [m.id for m in api.list_models(filter="automatic-speech-recognition")] == [
        "kenya/swahili-asr"
    ]
    top = next(iter(api.list_models(sort="downloads", limit=1)))
    assert top.id == "kenya/plain" and top.downloads == 3
    plain = api.model_info("kenya/plain")
    assert plain.downloads == 3 and plain.downloads_all_time == 3
    page = httpx.get(f"{live_server}/api/models", params={"limit": 2, "sort": "id"})
    assert len(page.json()) == 2 and 'rel="next"' in page.headers["Link"]
    rest = httpx.get(page.links["next"]["url"])
    assert len(rest.json()) == 1 and "Link" not in rest.headers
    assert [d.id for d in api.list_datasets()] == []


def test_settings_and_deleting_a_repository(live_server, make, hf_home, sessions) -> None:
    kenya = make.delegate("kenya", "KE")
    ghana = make.delegate("ghana", "GH")
    api = _api(live_server, kenya)
    api.create_repo("kenya/old")
    api.upload_file(
        path_or_fileobj=b"---\nlicense: mit\n---\n", path_in_repo="README.md", repo_id="kenya/old"
    )
    api.update_repo_settings("kenya/old", gated=False)
    with pytest.raises(HfHubHTTPError) as gated:  # gated by the card, not by a setting
        api.update_repo_settings("kenya/old", gated="manual")
    assert gated.value.response.headers["X-Error-Code"] == "commons.hub_not_supported"
    with pytest.raises(HfHubHTTPError) as stranger:
        _api(live_server, ghana).delete_repo("kenya/old")
    assert stranger.value.response.status_code == 403
    api.delete_repo("kenya/old")
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("kenya/old")
    api.delete_repo("kenya/old", missing_ok=True)
    with sessions() as db:
        kinds = [e.kind for e in db.scalars(select(Entry).order_by(Entry.index)).all()]
    assert kinds[-1] == "commons.deleted"


def test_many_small_text_files_fit_the_commit_limit(live_server, make, hf_home, tmp_path) -> None:
    kenya = make.delegate("kenya", "KE")
    api = _api(live_server, kenya)
    api.create_repo("kenya/texts")
    folder = tmp_path / "texts"
    folder.mkdir()
    (folder / "README.md").write_text("---\nlicense: cc-by-4.0\n---\n# Texts\n")
    for i in range(40):  # 1.2 MB of small text: more than one commit body may carry inline
        (folder / f"part-{i:02d}.txt").write_text(f"{i}\n" * 10_000)
    api.upload_folder(repo_id="kenya/texts", folder_path=folder)
    assert len(api.list_repo_files("kenya/texts")) == 41


def test_gated_repositories_wait_for_the_owner(live_server, make, hf_home, sessions) -> None:
    kenya = make.delegate("kenya", "KE")
    reader = make.observer()
    owner = _api(live_server, kenya)
    owner.create_repo("kenya/voices", repo_type="dataset")
    owner.create_commit(
        "kenya/voices",
        [
            CommitOperationAdd("README.md", b"---\nlicense: cc-by-4.0\ngated: manual\n---\n"),
            CommitOperationAdd("clips.csv", b"id,text\n1,habari\n"),
        ],
        commit_message="gated",
        repo_type="dataset",
    )
    download = dict(repo_type="dataset", endpoint=live_server)
    with pytest.raises(GatedRepoError):  # anonymous
        hf_hub_download("kenya/voices", "clips.csv", **download)
    with pytest.raises(GatedRepoError):  # signed in, not yet accepted
        hf_hub_download("kenya/voices", "clips.csv", token=reader.token, **download)
    info = HfApi(endpoint=live_server).dataset_info("kenya/voices")
    assert info.gated == "manual"
    assert all(s.lfs is None for s in info.siblings or [])  # no hash to fetch content by
    asked = httpx.post(
        f"{live_server}/api/datasets/kenya/voices/ask-access", headers=reader.headers
    )
    assert asked.json() == {"status": "pending"}
    pending = owner.list_pending_access_requests("kenya/voices", repo_type="dataset")
    assert [p.email for p in pending] == [reader.person.email]
    owner.accept_access_request("kenya/voices", reader.person.email, repo_type="dataset")
    path = hf_hub_download("kenya/voices", "clips.csv", token=reader.token, **download)
    assert Path(path).read_bytes() == b"id,text\n1,habari\n"
    with sessions() as db:
        kinds = [e.kind for e in db.scalars(select(Entry).order_by(Entry.index)).all()]
    assert kinds[-2:] == ["commons.access_requested", "commons.access_decided"]


def test_auto_gated_repositories_grant_on_request(live_server, make, hf_home) -> None:
    kenya = make.delegate("kenya", "KE")
    reader = make.observer()
    owner = _api(live_server, kenya)
    owner.create_repo("kenya/auto")
    owner.upload_file(
        path_or_fileobj=b"---\nlicense: mit\ngated: auto\n---\n",
        path_in_repo="README.md",
        repo_id="kenya/auto",
    )
    with pytest.raises(GatedRepoError):
        hf_hub_download("kenya/auto", "README.md", endpoint=live_server, token=reader.token)
    asked = httpx.post(f"{live_server}/api/models/kenya/auto/ask-access", headers=reader.headers)
    assert asked.json() == {"status": "accepted"}
    hf_hub_download("kenya/auto", "README.md", endpoint=live_server, token=reader.token)


def test_private_repositories_are_seen_by_their_member_and_the_secretariat_only(
    live_server, make, hf_home, sessions
) -> None:
    kenya = make.delegate("kenya", "KE")
    ghana = make.delegate("ghana", "GH")
    secretariat = make.secretariat()
    owner = _api(live_server, kenya)
    owner.create_repo("kenya/quiet", private=True)
    data = b"id,text\n1,kimya\n"
    owner.create_commit(
        "kenya/quiet",
        [
            CommitOperationAdd("README.md", b"---\nlicense: mit\n---\n"),
            CommitOperationAdd("notes.csv", data),
        ],
        commit_message="private",
    )
    sha = hashlib.sha256(data).hexdigest()
    assert owner.model_info("kenya/quiet").private is True
    assert _api(live_server, secretariat).list_repo_files("kenya/quiet") == [
        "README.md",
        "notes.csv",
    ]
    for outsider in (HfApi(endpoint=live_server), _api(live_server, ghana)):
        with pytest.raises(RepositoryNotFoundError):
            outsider.model_info("kenya/quiet")
        with pytest.raises(RepositoryNotFoundError):
            outsider.list_repo_files("kenya/quiet")
        with pytest.raises(RepositoryNotFoundError):
            outsider.list_repo_refs("kenya/quiet")
        assert "kenya/quiet" not in [m.id for m in outsider.list_models(search="quiet")]
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("kenya/quiet", "notes.csv", endpoint=live_server, token=ghana.token)
    by_hash = httpx.get(
        f"{live_server}/api/commons/content/{sha}", headers=ghana.headers, timeout=30
    )
    assert by_hash.status_code == 404 and by_hash.headers["X-Error-Code"] == "EntryNotFound"
    assert httpx.get(f"{live_server}/commons/models/kenya/quiet", timeout=30).status_code == 404
    assert "kenya/quiet" in [m.id for m in owner.list_models(search="quiet")]
    path = hf_hub_download("kenya/quiet", "notes.csv", endpoint=live_server, token=kenya.token)
    assert Path(path).read_bytes() == data

    owner.update_repo_settings("kenya/quiet", private=False)

    assert HfApi(endpoint=live_server).model_info("kenya/quiet").private is False
    assert httpx.get(f"{live_server}/api/commons/content/{sha}", timeout=30).content == data
    with sessions() as db:
        changes = [
            json.loads(e.body)["content"]
            for e in db.scalars(select(Entry).order_by(Entry.index)).all()
            if e.kind == "commons.visibility_changed"
        ]
    assert [c["private"] for c in changes] == [True, False]


def test_likes_count_list_and_sort(live_server, make, hf_home) -> None:
    """The client has no `like` (the Hub allows it from its pages only); it unlikes, lists a
    user's likes and a repository's likers, and reads `likes` in info and listings."""
    kenya = make.delegate("kenya", "KE")
    ghana = make.delegate("ghana", "GH")
    reader = make.observer()
    owner = _api(live_server, kenya)
    for name in ("liked", "plain"):
        owner.create_repo(f"kenya/{name}")
        owner.upload_file(
            path_or_fileobj=b"---\nlicense: mit\n---\n",
            path_in_repo="README.md",
            repo_id=f"kenya/{name}",
        )
    for actor in (ghana, reader, ghana):  # twice by ghana: still one like
        answer = httpx.post(f"{live_server}/api/models/kenya/liked/like", headers=actor.headers)
        assert answer.status_code == 200, answer.text
    anonymous = httpx.post(f"{live_server}/api/models/kenya/liked/like")
    assert anonymous.status_code == 401

    assert HfApi(endpoint=live_server).model_info("kenya/liked").likes == 2
    assert [m.id for m in HfApi(endpoint=live_server).list_models(sort="likes")] == [
        "kenya/liked",
        "kenya/plain",
    ]
    assert _api(live_server, ghana).list_liked_repos().models == ["kenya/liked"]
    likers = sorted(u.username for u in owner.list_repo_likers("kenya/liked"))
    assert likers == ["ghana", f"person-{reader.person.id}"]

    _api(live_server, ghana).unlike("kenya/liked")

    assert HfApi(endpoint=live_server).model_info("kenya/liked").likes == 1
    assert _api(live_server, ghana).list_liked_repos().models == []


def test_large_files_travel_in_parts(live_server, make, hf_home, monkeypatch, sessions) -> None:
    """Above its threshold the batch API answers with the multipart transfer: the client PUTs
    each part to its own address, then the completion joins and checks them."""
    from concord.commons.hub_protocol import lfs

    monkeypatch.setattr(lfs, "MULTIPART_ABOVE", 1024 * 1024)
    monkeypatch.setattr(lfs, "PART_BYTES", 512 * 1024)
    kenya = make.delegate("kenya", "KE")
    api = _api(live_server, kenya)
    api.create_repo("kenya/parts")
    api.upload_file(
        path_or_fileobj=b"---\nlicense: mit\n---\n", path_in_repo="README.md", repo_id="kenya/parts"
    )
    data = safetensors_bytes(11, size=600)  # 1.4 MB: three parts of 512 KiB
    oid = hashlib.sha256(data).hexdigest()
    batch = httpx.post(
        f"{live_server}/kenya/parts.git/info/lfs/objects/batch",
        json={
            "operation": "upload",
            "transfers": ["basic", "multipart"],
            "objects": [{"oid": oid, "size": len(data)}],
        },
        headers=kenya.headers,
    ).json()
    header = batch["objects"][0]["actions"]["upload"]["header"]
    assert header["chunk_size"] == str(512 * 1024) and sorted(header) == [
        "1",
        "2",
        "3",
        "chunk_size",
    ]

    api.upload_file(path_or_fileobj=data, path_in_repo="model.safetensors", repo_id="kenya/parts")

    path = hf_hub_download("kenya/parts", "model.safetensors", endpoint=live_server)
    assert Path(path).read_bytes() == data
    with sessions() as db:
        blob = db.get(Blob, oid)
        assert blob is not None and blob.size == len(data)
