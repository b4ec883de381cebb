"""Publishing: safe formats only, valid names and licences, owners only, atomic pushes,
deduplication below the file level, and downloads counted by country."""

from __future__ import annotations

import hashlib
import pickle

import numpy as np
import pytest
from safetensors.numpy import save
from sqlalchemy import func, select

from concord.commons.stats import downloads
from concord.commons.tables import Chunk, Revision
from concord.ledger.tables import LogEntry

from .conftest import publish, safetensors_bytes


def _upload(client, actor, name, data, **headers):
    return client.post(
        "/api/commons/uploads",
        params={"filename": name},
        content=data,
        headers={**actor.headers, **headers},
    )


@pytest.mark.parametrize(
    ("name", "data", "code"),
    [
        ("model.bin", b"weights", "commons.unsafe_format"),
        ("model.pt", b"weights", "commons.unsafe_format"),
        ("weights.pkl", pickle.dumps({"a": 1}), "commons.unsafe_format"),
        ("innocent.json", pickle.dumps([1, 2]), "commons.unsafe_format"),
        (
            "model.safetensors",
            b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}",
            "commons.bad_safetensors",
        ),
        ("model.safetensors", b"\xff" * 8, "commons.bad_safetensors"),
        ("../../etc/passwd", b"x", "commons.bad_path"),
        ("/abs/path", b"x", "commons.bad_path"),
        ("a/./b", b"x", "commons.bad_path"),
    ],
)
def test_refused_uploads_store_nothing(client, make, db, name, data, code) -> None:
    kenya = make.delegate("kenya", "KE")
    r = _upload(client, kenya, name, data)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == code
    assert db.scalar(select(func.count()).select_from(Chunk)) == 0


def test_object_arrays_in_numpy_files_are_refused(client, make, tmp_path) -> None:
    kenya = make.delegate("kenya", "KE")
    plain, pickled = tmp_path / "a.npy", tmp_path / "b.npy"
    np.save(plain, np.arange(10))
    np.save(pickled, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    assert _upload(client, kenya, "a.npy", plain.read_bytes()).status_code == 201
    r = _upload(client, kenya, "b.npy", pickled.read_bytes())
    assert r.json()["error"]["code"] == "commons.unsafe_format"


def test_hash_mismatch_and_truncation(client, make) -> None:
    kenya = make.delegate("kenya", "KE")
    r = _upload(client, kenya, "a.txt", b"hello", **{"X-Content-SHA256": "0" * 64})
    assert r.json()["error"]["code"] == "commons.hash_mismatch"


def test_licences_owners_and_atomic_pushes(client, make, db) -> None:
    kenya = make.delegate("kenya", "KE")
    peru = make.delegate("peru", "PE")
    r = client.post(
        "/api/commons/repos",
        headers=kenya.headers,
        json={"owner": "kenya", "name": "m", "kind": "model", "licence": "wtfpl-9"},
    )
    assert r.json()["error"]["code"] == "commons.unknown_licence"
    publish(client, kenya, "kenya", "m", {"a.txt": b"one"})
    r = client.post(
        "/api/commons/repos/model/kenya/m/commits", headers=peru.headers, json={"files": {}}
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "auth.not_your_member"
    before = db.scalar(select(func.count()).select_from(Revision))
    # A commit naming content that was never uploaded changes nothing.
    r = client.post(
        "/api/commons/repos/model/kenya/m/commits",
        headers=kenya.headers,
        json={"files": {"b.txt": "f" * 64, "c.txt": hashlib.sha256(b"one").hexdigest()}},
    )
    assert r.json()["error"]["code"] == "commons.unknown_blob"
    assert db.scalar(select(func.count()).select_from(Revision)) == before
    logged = db.scalars(select(LogEntry.kind)).all()
    assert logged.count("commons.published") == 1


def test_fine_tune_stores_only_changed_chunks(client, make, db) -> None:
    kenya = make.delegate("kenya", "KE")
    rng = np.random.default_rng(0)
    tensors = {
        f"layer{i}.weight": rng.standard_normal((256, 256)).astype(np.float32) for i in range(20)
    }
    base = save(tensors)
    publish(client, kenya, "kenya", "base", {"model.safetensors": base})
    stored_base = db.scalar(select(func.sum(Chunk.length)))
    for i in (3, 11):  # a fine-tune changes 10 % of the tensors
        tensors[f"layer{i}.weight"] = tensors[f"layer{i}.weight"] + 0.01
    publish(client, kenya, "kenya", "base", {"model.safetensors": save(tensors)}, create=False)
    added = db.scalar(select(func.sum(Chunk.length))) - stored_base
    assert added < 0.2 * len(base), f"{added} of {len(base)} bytes stored again"


def test_downloads_are_counted_by_country(client, make, db) -> None:
    kenya = make.delegate("kenya", "KE")
    brazil = make.delegate("brazil", "BR")
    publish(client, kenya, "kenya", "m", {"model.safetensors": safetensors_bytes()})
    for headers in (brazil.headers, {}, brazil.headers):
        r = client.get("/kenya/m/resolve/main/model.safetensors", headers=headers)
        assert r.status_code == 200
    client.get(
        "/kenya/m/resolve/main/model.safetensors",
        headers={**brazil.headers, "Range": "bytes=10-20"},
    )  # a resumed part: not counted
    assert downloads(db) == {"BR": 2, None: 1}


def test_pages_show_card_files_and_provenance(client, make) -> None:
    from .conftest import CARD

    kenya = make.delegate("kenya", "KE")
    publish(
        client,
        kenya,
        "kenya",
        "asr",
        {
            "README.md": CARD.encode() + b"<script>x</script>",
            "model.safetensors": safetensors_bytes(),
        },
    )
    listing = client.get("/commons", params={"language": "sw"})
    assert "kenya/asr" in listing.text
    assert "kenya/asr" not in client.get("/commons", params={"licence": "mit"}).text
    page = client.get("/commons/models/kenya/asr")
    assert page.status_code == 200
    assert "Swahili speech model" in page.text and "model.safetensors" in page.text
    assert "<script>x</script>" not in page.text  # the card is escaped
