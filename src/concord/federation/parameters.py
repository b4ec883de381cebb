"""Model parameters on the wire and at rest: safetensors (named tensors), never pickles."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from numpy.typing import NDArray
from safetensors import SafetensorError
from safetensors.numpy import load, save

from concord.errors import N_, Invalid

Parameters = dict[str, NDArray[Any]]


class BadParameters(Invalid):
    code = "federation.bad_parameters"
    message = N_("The parameters are not usable: {reason}")


def to_safetensors(params: Parameters) -> bytes:
    return save({k: np.ascontiguousarray(v) for k, v in params.items()})


def from_safetensors(data: bytes) -> Parameters:
    try:
        return dict(load(data))
    except (SafetensorError, ValueError, OSError) as exc:
        raise BadParameters(reason=N_("not a valid safetensors file")) from exc


def to_list(params: Parameters) -> list[NDArray[Any]]:
    return [params[k] for k in params]


def from_list(names: Sequence[str], arrays: Sequence[NDArray[Any]]) -> Parameters:
    if len(names) != len(arrays):
        raise BadParameters(reason=N_("as many names as arrays are needed"))
    return dict(zip(names, arrays, strict=True))


def from_state_dict(state: Any) -> Parameters:
    """A PyTorch `state_dict` → NumPy arrays (detached, on the CPU)."""
    return {k: v.detach().cpu().numpy() for k, v in state.items()}


def to_state_dict(params: Parameters) -> dict[str, Any]:
    import torch

    return {k: torch.from_numpy(np.array(v)) for k, v in params.items()}


def check_compatible(reference: Parameters, update: Parameters) -> None:
    """Refuses an update whose names, shapes or dtypes differ, or that holds NaN or Inf."""
    if set(reference) != set(update):  # names matter, not their order in the file
        raise BadParameters(reason=N_("the tensor names differ from the model's"))
    for name, ref in reference.items():
        value = update[name]
        if value.shape != ref.shape:
            raise BadParameters(reason=N_("a tensor has the wrong shape"))
        if value.dtype != ref.dtype:
            raise BadParameters(reason=N_("a tensor has the wrong dtype"))
        if np.issubdtype(value.dtype, np.floating) and not np.isfinite(value).all():
            raise BadParameters(reason=N_("a tensor holds NaN or infinity"))


def digest(params: Parameters) -> str:
    """SHA-256 of the safetensors bytes: what the log records for an aggregate."""
    return hashlib.sha256(to_safetensors(params)).hexdigest()


# Files on disk, read and written a piece at a time, so that the hub's memory while receiving,
# checking and aggregating updates stays O(model) whatever the number of clients.

# Safetensors' dtype names, in the order of its `Dtype` enum (the writer sorts tensors by it).
DTYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "U8": np.dtype(np.uint8),
    "I8": np.dtype(np.int8),
    "I16": np.dtype(np.int16),
    "U16": np.dtype(np.uint16),
    "F16": np.dtype(np.float16),
    "I32": np.dtype(np.int32),
    "U32": np.dtype(np.uint32),
    "F32": np.dtype(np.float32),
    "F64": np.dtype(np.float64),
    "I64": np.dtype(np.int64),
    "U64": np.dtype(np.uint64),
}
NAMES = {dtype: name for name, dtype in DTYPES.items()}
RANK = {name: i for i, name in enumerate(DTYPES)}
MAX_HEADER = 16 * 1024 * 1024
CHUNK = 1 << 16  # elements read at a time


@dataclass(frozen=True)
class TensorInfo:
    dtype: np.dtype[Any]
    shape: tuple[int, ...]
    begin: int  # byte offset from the start of the data section
    end: int

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


class TensorFile:
    """A safetensors file whose header is validated up front and whose tensors are read in
    pieces (`read`), never mapped or loaded whole unless asked (`load`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle: BinaryIO = path.open("rb")
        try:
            self.tensors, self.data_start = _read_header(self.handle, path.stat().st_size)
        except BaseException:
            self.handle.close()
            raise

    def __enter__(self) -> TensorFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.handle.close()

    def read(self, name: str, start: int, stop: int) -> NDArray[Any]:
        """Elements [start, stop) of tensor `name`, flattened."""
        info = self.tensors[name]
        item = info.dtype.itemsize
        count = max(0, min(stop, info.size) - start)
        self.handle.seek(self.data_start + info.begin + start * item)
        raw = self.handle.read(count * item)
        if len(raw) != count * item:
            raise BadParameters(reason=N_("not a valid safetensors file"))
        return np.frombuffer(raw, dtype=info.dtype)

    def pieces(self, name: str, chunk: int = CHUNK) -> Iterator[tuple[int, NDArray[Any]]]:
        """(start, elements) of tensor `name`, `chunk` elements at a time."""
        size = self.tensors[name].size
        for start in range(0, size, chunk):
            yield start, self.read(name, start, start + chunk)

    def load(self) -> Parameters:
        return {
            name: self.read(name, 0, info.size).reshape(info.shape).copy()
            for name, info in self.tensors.items()
        }


def _read_header(handle: BinaryIO, file_size: int) -> tuple[dict[str, TensorInfo], int]:
    """The tensors a safetensors header declares, checked to tile the data section exactly."""
    invalid = BadParameters(reason=N_("not a valid safetensors file"))
    first = handle.read(8)
    if len(first) != 8:
        raise invalid
    (length,) = struct.unpack("<Q", first)
    if length > MAX_HEADER or 8 + length > file_size:
        raise invalid
    try:
        header = json.loads(handle.read(length))
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid from exc
    if not isinstance(header, dict):
        raise invalid
    tensors: dict[str, TensorInfo] = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype = DTYPES[entry["dtype"]]
            shape = tuple(int(d) for d in entry["shape"])
            begin, end = (int(o) for o in entry["data_offsets"])
        except (KeyError, TypeError, ValueError) as exc:
            raise invalid from exc
        if any(d < 0 for d in shape) or end - begin != int(np.prod(shape)) * dtype.itemsize:
            raise invalid
        tensors[name] = TensorInfo(dtype, shape, begin, end)
    position = 0
    for info in sorted(tensors.values(), key=lambda t: t.begin):
        if info.begin != position:
            raise invalid
        position = info.end
    if 8 + length + position != file_size:
        raise invalid
    return tensors, 8 + length


def check_compatible_file(reference: TensorFile, update: TensorFile) -> None:
    """`check_compatible` for files: headers compared, values scanned a piece at a time."""
    if set(reference.tensors) != set(update.tensors):
        raise BadParameters(reason=N_("the tensor names differ from the model's"))
    for name, ref in reference.tensors.items():
        info = update.tensors[name]
        if info.shape != ref.shape:
            raise BadParameters(reason=N_("a tensor has the wrong shape"))
        if info.dtype != ref.dtype:
            raise BadParameters(reason=N_("a tensor has the wrong dtype"))
        if np.issubdtype(info.dtype, np.floating):
            for _start, piece in update.pieces(name):
                if not np.isfinite(piece).all():
                    raise BadParameters(reason=N_("a tensor holds NaN or infinity"))


def _layout(params: Parameters) -> tuple[bytes, list[str]]:
    """The header and tensor order that `safetensors.numpy.save` writes: tensors by dtype
    (its enum order, descending), then by name; the header padded with spaces to 8 bytes."""
    for value in params.values():
        if value.dtype not in NAMES:
            raise BadParameters(reason=N_("a tensor has the wrong dtype"))
    order = sorted(params, key=lambda k: (-RANK[NAMES[params[k].dtype]], k))
    entries: dict[str, Any] = {}
    offset = 0
    for name in order:
        value = params[name]
        entries[name] = {
            "dtype": NAMES[value.dtype],
            "shape": list(value.shape),
            "data_offsets": [offset, offset + value.nbytes],
        }
        offset += value.nbytes
    text = json.dumps(entries, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text, order


def write_safetensors(path: Path, params: Parameters) -> str:
    """Writes `params` to `path` as `to_safetensors` would, without a second copy of them in
    memory, through a temporary file renamed into place; returns the bytes' SHA-256."""
    params = {k: np.ascontiguousarray(v) for k, v in params.items()}  # as `to_safetensors`
    header, order = _layout(params)
    sha = hashlib.sha256(header)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(header)
            for name in order:
                view = params[name].reshape(-1).view(np.uint8).data
                sha.update(view)
                handle.write(view)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    sync_folder(path.parent)
    return sha.hexdigest()


def sync_file(path: Path) -> None:
    """Makes a file's bytes durable before it is renamed into place."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def sync_folder(folder: Path) -> None:
    """Makes a rename inside `folder` durable (the entry itself, not only the file's bytes)."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def file_sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            sha.update(block)
    return sha.hexdigest()
