"""Operations: health, readiness, metrics, and backup/restore by a round trip."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from concord.backup import BadArchive, TargetNotEmpty, backup, restore
from concord.config import Settings
from concord.db import make_engine, make_sessionmaker, upgrade
from concord.hubkey import load_or_create
from concord.ledger.tables import LogEntry
from concord.members.tables import ApiToken, Member, MemberKey
from concord.members.tokens import authenticate


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "schema": "ok", "store": "ok"}


def test_metrics_count_requests_and_report_the_log(client: TestClient, make) -> None:
    make.member("kenya", "KE")
    client.get("/api/members")
    text = client.get("/metrics").text
    assert 'concord_http_requests_total{method="GET",route="/api/members",status="200"}' in text
    assert "concord_log_entries 1.0" in text
    assert "concord_active_members 1.0" in text


def test_metrics_count_uploads_downloads_and_bytes(client: TestClient, make) -> None:
    from tests.commons.conftest import publish, safetensors_bytes

    def value(text: str, series: str) -> float:
        for line in text.splitlines():
            if line.startswith(series + " "):
                return float(line.split()[-1])
        return 0.0

    before = client.get("/metrics").text
    kenya = make.delegate("kenya", "KE")
    data = safetensors_bytes(1)
    publish(client, kenya, "kenya", "tiny", {"model.safetensors": data})
    got = client.get("/kenya/tiny/resolve/main/model.safetensors")
    if got.status_code in (301, 302, 307):
        got = client.get(got.headers["location"])
    assert got.content == data
    after = client.get("/metrics").text
    for series, grew in [
        ('concord_events_total{kind="upload"}', 1),
        ('concord_events_total{kind="download"}', 1),
        ('concord_events_total{kind="publication"}', 1),
        ('concord_bytes_total{direction="in"}', len(data)),
        ('concord_bytes_total{direction="out"}', len(data)),
    ]:
        assert value(after, series) - value(before, series) >= grew, series


def _fresh_sqlite(tmp_path: Path) -> Settings:
    target = Settings(data_dir=tmp_path / "restored", database_url="")
    target.data_dir.mkdir()
    upgrade(make_engine(target.database()))
    return target


def test_backup_restore_round_trip(settings: Settings, make, tmp_path: Path) -> None:
    load_or_create(settings)
    kenya = make.delegate("kenya", "KE")
    make.delegate("brazil", "BR")
    store = Path(settings.storage().removeprefix("file://"))
    (store / "blocks").mkdir(parents=True)
    (store / "blocks" / "b1").write_bytes(b"chunk bytes")
    archive = tmp_path / "hub.tar"
    manifest = backup(settings, archive)
    assert manifest["rows"]["members"] == 2

    target = _fresh_sqlite(tmp_path)  # also shows a PostgreSQL hub moving to SQLite
    restore(target, archive)
    sessions = make_sessionmaker(make_engine(target.database()))
    with sessions() as db:
        assert db.scalar(select(func.count()).select_from(Member)) == 2
        assert db.scalar(select(func.count()).select_from(MemberKey)) == 2
        assert db.scalar(select(func.count()).select_from(ApiToken)) == 2
        entries = db.scalars(select(LogEntry).order_by(LogEntry.index)).all()
        assert [e.index for e in entries] == list(range(len(entries)))
        assert authenticate(db, kenya.token).email == kenya.person.email
    restored_store = Path(target.storage().removeprefix("file://"))
    assert (restored_store / "blocks" / "b1").read_bytes() == b"chunk bytes"
    assert target.signing_key().read_bytes() == settings.signing_key().read_bytes()
    with pytest.raises(TargetNotEmpty):
        restore(target, archive)


def test_damaged_archives_are_refused_without_writing(
    settings: Settings, make, tmp_path: Path
) -> None:
    make.member("kenya", "KE")
    archive = tmp_path / "hub.tar"
    backup(settings, archive)
    damaged = tmp_path / "damaged.tar"
    with tarfile.open(archive) as source, tarfile.open(damaged, "w") as out:
        for info in source.getmembers():
            data = source.extractfile(info).read()
            if info.name == "db/members.jsonl":
                data = data.replace(b"kenya", b"kenyb")
            info.size = len(data)
            import io

            out.addfile(info, io.BytesIO(data))
    target = _fresh_sqlite(tmp_path)
    with pytest.raises(BadArchive):
        restore(target, damaged)
    truncated = tmp_path / "truncated.tar"
    truncated.write_bytes(archive.read_bytes()[:2000])
    with pytest.raises(BadArchive):
        restore(target, truncated)
    engine = make_engine(target.database())
    with make_sessionmaker(engine)() as db:
        assert db.scalar(select(func.count()).select_from(Member)) == 0


def test_large_blocks_go_back_to_the_system() -> None:
    """On glibc (Debian, this CI) the hub asks malloc to map large blocks, so they are returned."""
    import platform

    from concord.memory import release_large_blocks

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("mallopt is glibc's; other C libraries manage large blocks themselves")
    assert release_large_blocks() is True
