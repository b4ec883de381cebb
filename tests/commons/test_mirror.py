"""Mirrors and offline bundles carry a repository intact to another hub."""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save
from sqlalchemy import func, select

from concord.commons import repositories as repos
from concord.commons.chunks import ChunkStore
from concord.commons.mirror import BadBundle, export_bundle, import_bundle, mirror, runs
from concord.commons.tables import Repository, Revision
from concord.config import Settings
from concord.db import make_engine, make_sessionmaker, upgrade
from concord.hubkey import load_or_create
from concord.members.directory import admit

from .conftest import publish, safetensors_bytes


@pytest.fixture
def second_hub(tmp_path: Path):
    """A regional hub: its own SQLite database and store, the same member directory."""
    settings = Settings(data_dir=tmp_path / "regional", database_url="")
    settings.data_dir.mkdir()
    engine = make_engine(settings.database())
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    with sessions() as db:
        admit(db, slug="kenya", name="Kenya", kind="country", country_code="KE")
        db.commit()
    return settings, sessions, ChunkStore(settings.storage())


def test_mirror_copies_only_missing_chunks_and_keeps_hashes(
    live_server, client, make, second_hub
) -> None:
    _settings, sessions, store = second_hub
    kenya = make.delegate("kenya", "KE")
    first = publish(
        client,
        kenya,
        "kenya",
        "asr",
        {"model.safetensors": safetensors_bytes(1, 200), "README.md": b"---\nlicense: mit\n---\n"},
        licence="mit",
    )
    with sessions() as db:
        copied = mirror(db, store, live_server, "kenya/asr")
        db.commit()
    assert copied > 0
    publish(
        client,
        kenya,
        "kenya",
        "asr",
        {"README.md": b"---\nlicense: mit\n---\n# v2\n"},
        create=False,
    )
    with sessions() as db:
        again = mirror(db, store, live_server, "kenya/asr")
        db.commit()
        repo = repos.require(db, "model", "kenya", "asr")
        head = repos.head(db, repo)
        assert repo.mirrored_from == live_server
        assert head is not None and head.sha != first["revision"]
        weights = repos.file(db, repo, head, "model.safetensors")
        assert b"".join(store.stream(db, weights)) == safetensors_bytes(1, 200)
    assert 0 < again < copied  # the weights' chunks were already there


def test_runs_group_neighbouring_chunks_up_to_a_limit() -> None:
    wanted = [("a", 0, 10), ("b", 10, 10), ("c", 20, 10), ("d", 40, 10), ("e", 50, 30)]
    assert [[name for name, _o, _l in run] for run in runs(wanted, limit=25)] == [
        ["a", "b"],
        ["c"],
        ["d"],
        ["e"],
    ]
    assert [len(run) for run in runs(wanted, limit=100)] == [3, 2]  # the gap at 30–40 splits
    assert list(runs([])) == []


def test_mirror_fetches_a_changed_middle_by_range(live_server, client, make, second_hub) -> None:
    """A fine-tune that changes one tensor between two unchanged ones: the mirror asks for the
    changed bytes in the middle of the file and rebuilds it exactly."""
    _settings, sessions, store = second_hub
    kenya = make.delegate("kenya", "KE")
    rng = np.random.default_rng(3)
    tensors = {f"t{i}": rng.standard_normal((256, 256)).astype(np.float32) for i in range(3)}
    publish(client, kenya, "kenya", "big", {"model.safetensors": save(tensors)})
    with sessions() as db:
        first = mirror(db, store, live_server, "kenya/big")
        db.commit()
    tensors["t1"] = tensors["t1"] + 1.0
    tuned = save(tensors)
    publish(client, kenya, "kenya", "big", {"model.safetensors": tuned}, create=False)
    with sessions() as db:
        second = mirror(db, store, live_server, "kenya/big")
        db.commit()
        repo = repos.require(db, "model", "kenya", "big")
        head = repos.head(db, repo)
        assert head is not None
        weights = repos.file(db, repo, head, "model.safetensors")
        assert b"".join(store.stream(db, weights)) == tuned
    assert 0 < second < first


def test_bundle_round_trip_and_refusals(
    client, make, settings, second_hub, tmp_path, sessions
) -> None:
    target_settings, target_sessions, target_store = second_hub
    kenya = make.delegate("kenya", "KE")
    publish(client, kenya, "kenya", "asr", {"model.safetensors": safetensors_bytes(2, 150)})
    bundle = tmp_path / "asr.bundle"
    with sessions() as db:
        export_bundle(
            db,
            ChunkStore(settings.storage()),
            load_or_create(settings),
            [("model", "kenya/asr")],
            bundle,
            "http://source",
        )
    # A truncated bundle, and one with a chunk changed, are refused with nothing left behind.
    truncated = tmp_path / "truncated.bundle"
    truncated.write_bytes(bundle.read_bytes()[: len(bundle.read_bytes()) // 2])
    corrupted = tmp_path / "corrupted.bundle"
    with tarfile.open(bundle) as src, tarfile.open(corrupted, "w") as out:
        for info in src.getmembers():
            data = src.extractfile(info).read()
            if info.name.startswith("chunks/"):
                data = bytes([data[0] ^ 1]) + data[1:]
            import io

            out.addfile(info, io.BytesIO(data))
    for bad in (truncated, corrupted):
        with target_sessions() as db, pytest.raises(BadBundle):
            import_bundle(db, target_store, bad)
        with target_sessions() as db:
            assert db.scalar(select(func.count()).select_from(Repository)) == 0
    with target_sessions() as db:
        assert import_bundle(db, target_store, bundle) == ["kenya/asr"]
        db.commit()
    with target_sessions() as db:
        repo = repos.require(db, "model", "kenya", "asr")
        blob = repos.file(db, repo, repos.head(db, repo), "model.safetensors")
        assert b"".join(target_store.stream(db, blob)) == safetensors_bytes(2, 150)
        assert db.scalar(select(func.count()).select_from(Revision)) == 1
    del target_settings
