"""Mirrors and offline bundles: a repository carried to another hub, intact.

A mirror copies from another Concord hub only the chunks it lacks; a bundle is one file that
travels on a USB stick. Either way every chunk is verified against its BLAKE3 name, every file
against its SHA-256, revisions keep their ids, provenance and conformance, and nothing becomes
visible until everything has been checked (one transaction at the end).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import blake3
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from concord.client import HubClient
from concord.commons import disclosure
from concord.commons import repositories as repos
from concord.commons.chunks import ChunkStore, CorruptChunk, known_chunks
from concord.commons.formats import check_path, check_stream
from concord.commons.tables import Blob, Ref, Repository, Revision
from concord.db import utcnow
from concord.errors import N_, Invalid
from concord.ledger.log import canonical_json
from concord.members.directory import get_member

BUNDLE_FORMAT = "concord-bundle/1"
# A mirror asks for runs of neighbouring missing chunks in one range request of at most this
# many bytes: one request per chunk cost a round trip per 64 KiB (about 46 s per GiB).
RUN_BYTES = 16 * 1024 * 1024

Wanted = tuple[str, int, int]  # a chunk's name, and its offset and length in the file
# Gives the bytes of the wanted chunks of one file (named in the manifest), in any order.
Fetch = Callable[[dict[str, Any], list[Wanted]], Iterable[tuple[str, bytes]]]


class BadBundle(Invalid):
    code = "commons.bad_bundle"
    message = N_("The bundle cannot be imported: {reason}. Nothing was changed.")


def _install(
    session: Session,
    store: ChunkStore,
    detail: dict[str, Any],
    origin: str,
    fetch: Fetch,
) -> tuple[Repository, int]:
    """Brings one revision in: missing chunks first (verified), then rows, one transaction.

    Missing chunks are gathered into packs (a few large objects, not one per chunk); each
    file's SHA-256 is then checked over the stored bytes, read back in runs."""
    fetched = 0
    writer = store.writer(session)
    try:
        for f in detail["files"]:
            wanted = _missing(session, f, writer.names)
            lengths = {name: length for name, _offset, length in wanted}
            for name, data in fetch(f, wanted):
                if name not in lengths or name in writer.names:
                    continue
                if len(data) != lengths[name] or blake3.blake3(data).hexdigest() != name:
                    raise CorruptChunk(chunk=name)
                writer.add(name, data)
                fetched += 1
            if any(name not in writer.names for name in lengths):
                raise BadBundle(reason=f"chunks of {f['path']} did not arrive")
        writer.seal()
        session.flush()
        for f in detail["files"]:
            _admit(session, store, f)
    except BaseException:
        # The caller rolls the chunk rows back; the packs written for them go too, so a
        # refused or broken import leaves nothing in the store.
        writer.discard()
        raise
    session.flush()
    owner, _sep, name = detail["id"].partition("/")
    kind = detail["kind"]
    repo = repos.get(session, kind, owner, name, missing_ok=True)
    if repo is None:
        member = get_member(session, owner)
        repo = Repository(
            kind=kind,
            owner=owner,
            name=name,
            member_id=member.id,
            licence=detail["licence"],
            mirrored_from=origin,
            created_at=utcnow(),
        )
        session.add(repo)
        session.flush()
    if session.get(Revision, detail["revision"]) is None:
        revision = Revision(
            sha=detail["revision"],
            repository_id=repo.id,
            parent=detail.get("parent", ""),
            message=detail.get("message", ""),
            files={f["path"]: f["sha256"] for f in detail["files"]},
            card=detail["card"],
            provenance=detail["provenance"],
            conformance=detail["conformance"],
            author_id=None,
            created_at=utcnow(),
        )
        session.add(revision)
        repos.hold(session, repo, revision)  # its bytes are served by hash to its readers
    ref = session.get(Ref, (repo.id, "main"))
    moved = ref is None or ref.sha != detail["revision"]
    if ref is None:
        session.add(Ref(repository_id=repo.id, name="main", sha=detail["revision"]))
    else:
        ref.sha = detail["revision"]
    session.flush()
    if moved:  # mirroring what is here already changes nothing: nothing to log
        disclosure.record(
            session,
            repo,
            "commons.mirrored",
            {
                "repository": detail["id"],
                "kind": kind,
                "revision": detail["revision"],
                "from": origin,
            },
        )
    return repo, fetched


def _admit(session: Session, store: ChunkStore, f: dict[str, Any]) -> None:
    """Checks one incoming file (size, SHA-256, then the format gate under its path) and
    records its blob if new. Another hub's rules may be older or laxer than ours."""
    check_path(f["path"])
    blob = session.get(Blob, f["sha256"])
    if blob is None:
        blob = Blob(sha256=f["sha256"], size=f["size"], chunks=f["chunks"], created_at=utcnow())
        if sum(n for _h, n in f["chunks"]) != f["size"]:
            raise BadBundle(reason=f"{f['path']} does not match its size")
        digest = hashlib.sha256()
        for block in store.stream(session, blob):
            digest.update(block)
        if digest.hexdigest() != f["sha256"]:
            raise BadBundle(reason=f"{f['path']} does not match its SHA-256")
        fresh = True
    else:
        fresh = False
    with store.open(session, blob) as handle:
        check_stream(f["path"], handle, blob.size)
    if fresh:
        session.add(blob)


def _missing(session: Session, f: dict[str, Any], pending: set[str]) -> list[Wanted]:
    """The file's chunks that are neither stored nor on their way, each once, in file order."""
    names = [name for name, _length in f["chunks"]]
    known = known_chunks(session, names)
    wanted: list[Wanted] = []
    seen: set[str] = set()
    offset = 0
    for name, length in f["chunks"]:
        if name not in known and name not in pending and name not in seen:
            wanted.append((name, offset, length))
            seen.add(name)
        offset += length
    return wanted


def runs(wanted: list[Wanted], limit: int = RUN_BYTES) -> Iterator[list[Wanted]]:
    """Groups chunks that sit side by side in the file, up to `limit` bytes a group."""
    run: list[Wanted] = []
    for item in wanted:
        _name, offset, length = item
        if run:
            _n, first, _l = run[0]
            _n, last, last_length = run[-1]
            if offset != last + last_length or offset + length - first > limit:
                yield run
                run = []
        run.append(item)
    if run:
        yield run


def mirror(
    session: Session, store: ChunkStore, source: str, repo_ref: str, kind: str = "model"
) -> int:
    """Keeps `repo_ref` in step with the hub at `source`; returns the chunks copied."""
    with HubClient(source) as client:
        detail = client.get(f"/api/commons/repos/{kind}/{repo_ref}/revisions/main")

        def fetch(f: dict[str, Any], wanted: list[Wanted]) -> Iterator[tuple[str, bytes]]:
            for run in runs(wanted):
                start = run[0][1]
                end = run[-1][1] + run[-1][2]
                data = client.get_range(f"/api/commons/content/{f['sha256']}", start, end)
                for name, offset, length in run:
                    yield name, data[offset - start : offset - start + length]

        _repo, fetched = _install(session, store, detail, source, fetch)
    return fetched


def export_bundle(
    session: Session,
    store: ChunkStore,
    key: Ed25519PrivateKey,
    refs: list[tuple[str, str]],
    target: Path,
    origin: str,
) -> dict[str, Any]:
    """Writes one file holding the repositories' current revisions and their chunks."""
    details: list[dict[str, Any]] = []
    for kind, ref in refs:
        owner, _sep, name = ref.partition("/")
        repo = repos.require(session, kind, owner, name)
        rev = repos.resolve(session, repo, "main")
        details.append(
            {
                "id": ref,
                "kind": kind,
                "revision": rev.sha,
                "parent": rev.parent,
                "message": rev.message,
                "licence": repo.licence,
                "card": rev.card,
                "provenance": rev.provenance,
                "conformance": rev.conformance,
                "files": [
                    {
                        "path": f.path,
                        "size": f.blob.size,
                        "sha256": f.blob.sha256,
                        "chunks": f.blob.chunks,
                    }
                    for f in repos.files(session, rev)
                ],
            }
        )
    manifest = {
        "format": BUNDLE_FORMAT,
        "origin": origin,
        "repositories": details,
        "created": utcnow().isoformat(),
    }
    body = canonical_json(manifest)
    public = key.public_key().public_bytes_raw()
    signed = {
        "manifest": manifest,
        "signature": base64.b64encode(key.sign(body)).decode(),
        "public_key": base64.b64encode(public).decode(),
    }
    partial = target.with_name(target.name + ".partial")
    with tarfile.open(partial, "w") as archive:
        data = json.dumps(signed).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
        seen: set[str] = set()
        for detail in details:
            for f in detail["files"]:
                fresh = [name for name, _length in f["chunks"] if name not in seen]
                seen.update(fresh)
                for name, chunk in store.chunks(session, dict.fromkeys(fresh)):
                    info = tarfile.TarInfo(f"chunks/{name}")
                    info.size = len(chunk)
                    archive.addfile(info, io.BytesIO(chunk))
    os.replace(partial, target)
    return manifest


def import_bundle(
    session: Session, store: ChunkStore, source: Path, trusted_key: str | None = None
) -> list[str]:
    """Verifies the signed manifest and every chunk, then makes the repositories visible."""
    try:
        with tarfile.open(source, "r") as archive:
            member = archive.extractfile("manifest.json")
            if member is None:
                raise BadBundle(reason="no manifest")
            signed = json.loads(member.read())
            manifest = signed["manifest"]
            public = base64.b64decode(signed["public_key"])
            if trusted_key is not None and signed["public_key"] != trusted_key:
                raise BadBundle(reason="it was signed by another hub than the one you trust")
            Ed25519PublicKey.from_public_bytes(public).verify(
                base64.b64decode(signed["signature"]), canonical_json(manifest)
            )
            if manifest.get("format") != BUNDLE_FORMAT:
                raise BadBundle(reason="unknown format")
            with tempfile.TemporaryDirectory() as folder:
                chunks: dict[str, Path] = {}
                for info in archive.getmembers():
                    if not info.isfile() or not info.name.startswith("chunks/"):
                        continue
                    name = info.name.removeprefix("chunks/")
                    if "/" in name or len(name) != 64:
                        raise BadBundle(reason=f"unexpected entry {info.name}")
                    handle = archive.extractfile(info)
                    assert handle is not None
                    path = Path(folder) / name
                    path.write_bytes(handle.read())
                    chunks[name] = path

                def fetch(_f: dict[str, Any], wanted: list[Wanted]) -> Iterator[tuple[str, bytes]]:
                    for name, _offset, _length in wanted:
                        if name not in chunks:
                            raise BadBundle(reason=f"chunk {name[:12]}… is missing")
                        yield name, chunks[name].read_bytes()

                installed = []
                for detail in manifest["repositories"]:
                    _install(session, store, detail, str(manifest.get("origin", "bundle")), fetch)
                    installed.append(detail["id"])
    except CorruptChunk as exc:
        raise BadBundle(reason=exc.render()) from exc
    except (tarfile.TarError, EOFError, KeyError, ValueError, InvalidSignature) as exc:
        raise BadBundle(reason=f"{type(exc).__name__}: {exc}"[:200]) from exc
    return installed


__all__ = ["BadBundle", "export_bundle", "import_bundle", "mirror", "select"]
