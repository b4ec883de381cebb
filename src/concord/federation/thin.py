"""The hub's side of thin links: compressed updates expanded on arrival, and model downloads
answered as a difference from a model the node holds (federation/compression.py and
federation/delta.py hold the arithmetic; this module finds the files and caches).

A delta between two stored models never changes (checkpoints are written once), so the hub
computes it once and keeps it beside them in `job-N/deltas/`; the ten nodes of a round that
hold the same base get the same file (an empty file: the difference would be larger than the
model, so the whole model is sent). The cache is not synced: a lost file costs a
recomputation, a torn one whole downloads — the node checks the rebuilt model's SHA-256 and
asks for the whole model if it differs.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from concord.federation import compression, delta
from concord.federation.parameters import (
    Parameters,
    file_sha256,
    from_safetensors,
    write_safetensors,
)
from concord.federation.tables import Job, Round
from concord.governance.jobspec import Compression, JobSpec

SHA_HEADER = "X-Concord-Sha256"  # the SHA-256 of the round's start model (safetensors bytes)
BASE_HEADER = "X-Concord-Delta-Base"  # present when the body is a delta from that round

_SHAS: dict[tuple[str, int, int], str] = {}  # (path, size, mtime) → SHA-256


def start_of(session: Session, job_id: int, number: int) -> str | None:
    """The stored path of the model round `number` starts from (any attempt: they share it)."""
    return session.scalars(
        select(Round.parameters)
        .where(Round.job_id == job_id, Round.number == number)
        .order_by(Round.id.desc())
    ).first()


def model_sha256(root: Path, relative: str) -> str:
    """A stored model's SHA-256, hashed once per file version in this process."""
    path = root / relative
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _SHAS:
        _SHAS[key] = file_sha256(path)
    return _SHAS[key]


def _load(root: Path, relative: str) -> Parameters:
    return from_safetensors((root / relative).read_bytes())


def delta_body(root: Path, held: str, target: str) -> bytes | None:
    """The delta from stored model `held` to stored model `target` (cached), or None when
    `held` is gone or differs in layout."""
    if not (root / held).is_file():
        return None
    target_path = root / target
    cache = target_path.parent / "deltas" / f"{Path(held).stem}--{target_path.stem}.zdelta"
    if cache.is_file():
        return cache.read_bytes() or None  # empty: the whole model is the smaller answer
    body = delta.encode(_load(root, held), _load(root, target))
    if body is None or len(body) >= target_path.stat().st_size:
        body = b""  # an old base can be further than the whole model is large
    cache.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=cache.parent, prefix=".tmp-")
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(body)
    os.replace(temporary, cache)
    return body or None


def compressed_start(session: Session, job_id: int, number: int) -> tuple[Compression, str] | None:
    """For a job whose spec compresses updates: its compression and the stored path of the
    model round `number` starts from (what the node's delta is relative to); else None."""
    job = session.get(Job, job_id)
    if job is None:
        return None
    spec = JobSpec.model_validate(job.spec)
    start = start_of(session, job_id, number)
    if spec.compression is None or start is None:
        return None
    return spec.compression, start


def expand(root: Path, spec: Compression, start: str, received: Path) -> None:
    """Replaces the compressed update in `received` by the whole model it stands for (start +
    decoded delta), written in place atomically; BadParameters if it does not decode."""
    message = from_safetensors(received.read_bytes())
    model = compression.decode(spec, message, _load(root, start))
    write_safetensors(received, model)
