"""`concord backup` and `concord restore`: the database, the local store and the hub key in one
archive.

Rows are written as JSON lines per table, so an archive made on SQLite restores into
PostgreSQL and back (a way to move a hub). The archive's manifest lists every member file
with its SHA-256; `restore` checks them all before it writes anything, and writes every row in
one transaction, so a bad archive or a crash leaves the target as it was.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import tarfile
import tempfile
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from sqlalchemy import Engine, MetaData, Table, func, insert, select, text
from sqlalchemy.types import Date, DateTime, LargeBinary

from concord.config import Settings
from concord.db import is_current, make_engine
from concord.errors import N_, Conflict, Invalid

FORMAT = "concord-backup/1"
SKIP = {"alembic_version"}


class BadArchive(Invalid):
    code = "backup.bad_archive"
    message = N_("The backup archive is damaged or not a Concord backup: {reason}")


class TargetNotEmpty(Conflict):
    code = "backup.target_not_empty"
    message = N_("Restore needs an empty, initialised database; table {table} has rows.")


def _encode(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$b64": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, datetime):
        value = value if value.tzinfo else value.replace(tzinfo=UTC)
        return {"$dt": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    return value


def _decode(value: Any, column_type: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        if "$b64" in value and isinstance(column_type, LargeBinary):
            return base64.b64decode(value["$b64"])
        if "$dt" in value and isinstance(column_type, DateTime):
            parsed = datetime.fromisoformat(value["$dt"])
            return parsed if column_type.timezone else parsed.replace(tzinfo=None)
        if "$date" in value and isinstance(column_type, Date):
            return date.fromisoformat(value["$date"])
    return value


def _tables(engine: Engine) -> list[Table]:
    metadata = MetaData()
    metadata.reflect(engine)
    return [t for t in metadata.sorted_tables if t.name not in SKIP]


def _store_folder(settings: Settings) -> Path | None:
    parsed = urlparse(settings.storage())
    return Path(parsed.path) if parsed.scheme == "file" else None


def _add(archive: tarfile.TarFile, name: str, data: bytes, digests: dict[str, str]) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(datetime.now(UTC).timestamp())
    archive.addfile(info, io.BytesIO(data))
    digests[name] = hashlib.sha256(data).hexdigest()


def backup(settings: Settings, target: Path) -> dict[str, Any]:
    """Writes the archive to `target` (atomically) and returns its manifest."""
    engine = make_engine(settings.database())
    digests: dict[str, str] = {}
    counts: dict[str, int] = {}
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    with tarfile.open(partial, "w") as archive:
        with engine.connect() as connection:
            if engine.dialect.name == "postgresql":
                connection.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
            # One transaction: every table is read from the same snapshot.
            for table in _tables(engine):
                lines = [
                    json.dumps({k: _encode(v) for k, v in row._mapping.items()}, ensure_ascii=False)
                    for row in connection.execute(select(table))
                ]
                counts[table.name] = len(lines)
                _add(archive, f"db/{table.name}.jsonl", "\n".join(lines).encode(), digests)
            heads = [
                r[0] for r in connection.execute(text("SELECT version_num FROM alembic_version"))
            ]
        folder = _store_folder(settings)
        if folder is not None and folder.exists():
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                _add(
                    archive,
                    f"store/{path.relative_to(folder).as_posix()}",
                    path.read_bytes(),
                    digests,
                )
        key = settings.signing_key()
        if key.exists():
            _add(archive, "hub-signing-key.pem", key.read_bytes(), digests)
        manifest = {
            "format": FORMAT,
            "created": datetime.now(UTC).isoformat(),
            "schema": sorted(heads),
            "rows": counts,
            "files": digests,
        }
        _add(archive, "manifest.json", json.dumps(manifest, indent=1).encode(), {})
    os.replace(partial, target)
    return manifest


def _members(archive: tarfile.TarFile) -> Iterator[tuple[str, bytes]]:
    for info in archive.getmembers():
        if not info.isfile():
            raise BadArchive(reason=f"unexpected entry {info.name}")
        name = info.name
        if name.startswith("/") or ".." in Path(name).parts:
            raise BadArchive(reason=f"unsafe path {name}")
        handle = archive.extractfile(info)
        if handle is None:
            raise BadArchive(reason=f"unreadable entry {name}")
        yield name, handle.read()


def restore(settings: Settings, source: Path) -> dict[str, Any]:
    """Restores an archive into this hub's (empty, initialised) database and store."""
    try:
        with tarfile.open(source, "r") as archive:
            files = dict(_members(archive))
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BadArchive(reason=str(exc) or type(exc).__name__) from exc
    try:
        manifest: dict[str, Any] = json.loads(files.pop("manifest.json"))
    except (KeyError, ValueError) as exc:
        raise BadArchive(reason="no manifest") from exc
    if manifest.get("format") != FORMAT:
        raise BadArchive(reason=f"format {manifest.get('format')!r}")
    expected = manifest.get("files", {})
    if set(expected) != set(files):
        raise BadArchive(reason="the files do not match the manifest")
    for name, data in files.items():
        if hashlib.sha256(data).hexdigest() != expected[name]:
            raise BadArchive(reason=f"{name} does not match its hash")

    engine = make_engine(settings.database())
    if not is_current(engine):
        from concord.console import NotInitialised

        raise NotInitialised(url=settings.database().split("@")[-1])
    tables = _tables(engine)
    with engine.begin() as connection:
        for table in tables:
            if connection.execute(select(func.count()).select_from(table)).scalar():
                raise TargetNotEmpty(table=table.name)
        for table in tables:
            data = files.get(f"db/{table.name}.jsonl", b"")
            rows = [json.loads(line) for line in data.decode().splitlines() if line]
            if rows:
                types = {c.name: c.type for c in table.columns}
                decoded = [{k: _decode(v, types.get(k)) for k, v in r.items()} for r in rows]
                connection.execute(insert(table), decoded)
        if engine.dialect.name == "postgresql":
            _reset_sequences(connection, tables)
    folder = _store_folder(settings)
    for name, data in files.items():
        if name.startswith("store/") and folder is not None:
            _write_atomically(folder / name.removeprefix("store/"), data)
    key = settings.signing_key()
    if "hub-signing-key.pem" in files and not key.exists():
        _write_atomically(key, files["hub-signing-key.pem"], mode=0o600)
    return manifest


def _reset_sequences(connection: Any, tables: list[Table]) -> None:
    for table in tables:
        for column in table.primary_key.columns:
            seq = connection.execute(
                text("SELECT pg_get_serial_sequence(:t, :c)"),
                {"t": table.name, "c": column.name},
            ).scalar()
            if seq:
                # Names come from reflecting our own schema, never from input.
                highest = f'SELECT MAX("{column.name}") FROM "{table.name}"'  # noqa: S608
                connection.execute(
                    text(f"SELECT setval(:s, COALESCE(({highest}), 0) + 1, false)"),
                    {"s": seq},
                )


def _write_atomically(path: Path, data: bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".restore-")
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(temporary, mode)
    os.replace(temporary, path)
