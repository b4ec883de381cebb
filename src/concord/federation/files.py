"""The federation's files in the hub's store: checkpoints, updates and the model's card, each
written to a temporary name, synced and renamed into place before the transaction that refers
to it commits (a crash leaves at worst a file that no row names, which the next attempt
overwrites)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from concord.config import Settings
from concord.federation.parameters import Parameters, from_safetensors, sync_folder


def folder(settings: Settings) -> Path:
    root = settings.local_store() / "federation"
    root.mkdir(parents=True, exist_ok=True)
    return root


def write_file(settings: Settings, relative: str, data: bytes) -> str:
    path = folder(settings) / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    sync_folder(path.parent)
    return relative


def read_parameters(settings: Settings, relative: str) -> Parameters:
    return from_safetensors((folder(settings) / relative).read_bytes())
