"""The whole commons on S3-compatible storage: a real `moto_server`, started by the tests.

Every test here runs the hub with `CONCORD_STORAGE_URL=s3://…`: pushes, ranged downloads,
`concord pull`, the Hugging Face client, mirrors and bundles, and a corrupted object."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from huggingface_hub import hf_hub_download

from concord.commons import repositories as repos
from concord.commons.chunks import UnknownChunk, open_store
from concord.commons.mirror import export_bundle, import_bundle, mirror
from concord.commons.pull import pull
from concord.config import Settings
from concord.db import make_engine, make_sessionmaker, upgrade
from concord.errors import RemoteError
from concord.hubkey import load_or_create
from concord.members.directory import admit

from .conftest import publish, safetensors_bytes


@pytest.fixture
def settings(settings: Settings, s3_bucket: str, moto_endpoint: str) -> Settings:
    """The suite's settings, with the store in a bucket of the moto server."""
    return settings.model_copy(
        update={"storage_url": f"s3://{s3_bucket}/hub?endpoint={moto_endpoint}"}
    )


def _objects(bucket: str, endpoint: str) -> list[str]:
    answer = boto3.client("s3", endpoint_url=endpoint).list_objects_v2(Bucket=bucket)
    return [item["Key"] for item in answer.get("Contents", [])]


def test_push_then_ranges_pull_and_hf_client_from_s3(
    client, live_server, make, settings, s3_bucket, moto_endpoint, hf_home, tmp_path
) -> None:
    kenya = make.delegate("kenya", "KE")
    weights = safetensors_bytes(7, size=400)  # ~640 kB, about ten chunks
    publish(client, kenya, "kenya", "asr", {"model.safetensors": weights})
    keys = _objects(s3_bucket, moto_endpoint)
    assert keys and all(k.startswith("hub/packs/") and k.endswith(".pack") for k in keys)
    assert not list((settings.data_dir / "store").rglob("*.pack"))  # nothing on local disk
    head = client.head("/kenya/asr/resolve/main/model.safetensors", follow_redirects=False)
    location = head.headers["Location"]
    whole = client.get(location)
    assert whole.status_code == 200 and whole.content == weights
    for first, last in ((0, 0), (1000, 300_000), (len(weights) - 10, len(weights) - 1)):
        part = client.get(location, headers={"Range": f"bytes={first}-{last}"})
        assert part.status_code == 206 and part.content == weights[first : last + 1]
    pulled = pull(live_server, "kenya/asr", to=tmp_path / "pulled")
    assert (tmp_path / "pulled" / "model.safetensors").read_bytes() == weights
    assert pulled.downloaded_bytes == len(weights)
    path = hf_hub_download("kenya/asr", "model.safetensors", endpoint=live_server)
    assert Path(path).read_bytes() == weights


def test_readiness_probes_the_bucket(client, s3_bucket, moto_endpoint) -> None:
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["store"] == "ok"
    boto3.client("s3", endpoint_url=moto_endpoint).delete_bucket(Bucket=s3_bucket)
    gone = client.get("/readyz")
    assert gone.status_code == 503
    assert s3_bucket in gone.json()["checks"]["store"]


def test_a_corrupted_object_is_refused_on_read(
    client, live_server, make, s3_bucket, moto_endpoint, tmp_path
) -> None:
    kenya = make.delegate("kenya", "KE")
    publish(client, kenya, "kenya", "asr", {"model.safetensors": safetensors_bytes(8, 200)})
    s3 = boto3.client("s3", endpoint_url=moto_endpoint)
    for key in _objects(s3_bucket, moto_endpoint):
        body = bytearray(s3.get_object(Bucket=s3_bucket, Key=key)["Body"].read())
        body[100] ^= 0xFF  # one bit pattern changed inside the first chunk
        s3.put_object(Bucket=s3_bucket, Key=key, Body=bytes(body))
    answer = client.get("/kenya/asr/resolve/main/model.safetensors")
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "commons.corrupt_chunk"
    with pytest.raises(RemoteError) as refused:
        pull(live_server, "kenya/asr", to=tmp_path / "pulled")
    assert refused.value.code == "commons.corrupt_chunk"
    assert not (tmp_path / "pulled" / "model.safetensors").exists()


def _regional_hub(tmp_path: Path, storage_url: str) -> tuple[Settings, object]:
    settings = Settings(data_dir=tmp_path / "regional", database_url="", storage_url=storage_url)
    settings.data_dir.mkdir(parents=True)
    engine = make_engine(settings.database())
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    with sessions() as db:
        admit(db, slug="kenya", name="Kenya", kind="country", country_code="KE")
        db.commit()
    return settings, sessions


def test_mirror_and_bundle_between_s3_hubs(
    client, live_server, make, settings, sessions, s3_bucket, moto_endpoint, tmp_path
) -> None:
    kenya = make.delegate("kenya", "KE")
    weights = safetensors_bytes(9, 300)
    publish(client, kenya, "kenya", "asr", {"model.safetensors": weights})
    # The regional hub keeps its packs under another prefix of the same S3 service.
    regional, regional_sessions = _regional_hub(
        tmp_path, f"s3://{s3_bucket}/nairobi?endpoint={moto_endpoint}"
    )
    store = open_store(regional)
    with regional_sessions() as db:  # type: ignore[operator]
        copied = mirror(db, store, live_server, "kenya/asr")
        db.commit()
    assert copied > 0
    assert any(k.startswith("nairobi/packs/") for k in _objects(s3_bucket, moto_endpoint))
    with regional_sessions() as db:  # type: ignore[operator]
        repo = repos.require(db, "model", "kenya", "asr")
        blob = repos.file(db, repo, repos.head(db, repo), "model.safetensors")
        assert b"".join(store.stream(db, blob)) == weights
    bundle = tmp_path / "asr.bundle"
    with sessions() as db:
        export_bundle(
            db,
            open_store(settings),
            load_or_create(settings),
            [("model", "kenya/asr")],
            bundle,
            "x",
        )
    offline, offline_sessions = _regional_hub(
        tmp_path / "offline", f"s3://{s3_bucket}/vientiane?endpoint={moto_endpoint}"
    )
    offline_store = open_store(offline)
    with offline_sessions() as db:  # type: ignore[operator]
        assert import_bundle(db, offline_store, bundle) == ["kenya/asr"]
        db.commit()
    with offline_sessions() as db:  # type: ignore[operator]
        repo = repos.require(db, "model", "kenya", "asr")
        blob = repos.file(db, repo, repos.head(db, repo), "model.safetensors")
        assert b"".join(offline_store.stream(db, blob)) == weights
        # A name the store never held is the asker's mistake (404), not a corrupt store (503).
        with pytest.raises(UnknownChunk):
            offline_store.read_chunk(db, "0" * 64)
