"""Safe formats only: nothing that runs code when loaded enters the commons.

Pickle-bearing formats (`.bin`, `.pt`, `.pth`, `.pkl`, `.ckpt`, pickled NumPy) can execute
arbitrary code when opened, so they are refused with an explanation of how to convert them.
Safetensors files are checked to have a well-formed header before they are accepted.
"""

from __future__ import annotations

import json
import struct
import unicodedata
from pathlib import Path, PurePosixPath
from typing import Any

from concord.errors import N_, Invalid

PICKLE_SUFFIXES = {".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".dill"}
SAFETENSORS_DTYPES = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
}
MAX_HEADER = 100 * 1024 * 1024


class UnsafeFormat(Invalid):
    code = "commons.unsafe_format"
    message = N_(
        "“{name}” is a pickle-based format, which can run code when it is opened, so the "
        "commons refuses it. Convert it to safetensors, e.g. "
        "`safetensors.torch.save_file(torch.load(path, weights_only=True), 'model.safetensors')`."
    )


class BadSafetensors(Invalid):
    code = "commons.bad_safetensors"
    message = N_("“{name}” is not a valid safetensors file: {reason}")


class BadPath(Invalid):
    code = "commons.bad_path"
    message = N_(
        "“{name}” is not an acceptable file name: use a relative path of up to 500 characters, "
        "without “..” or empty segments, backslashes, control or text-direction characters."
    )


# Characters that reorder how a name is displayed (a file can pose as another's name).
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")


def check_path(name: str) -> str:
    """The repository path in NFC form, refused if it could escape a folder or deceive.

    As the Hub allows: any Unicode letters, spaces and punctuation; never absolute, never `..`
    or empty segments, no backslash, control or bidi-override characters. The result names a
    file inside a repository's tree only: it never becomes a filesystem path unchecked."""
    if not isinstance(name, str):
        raise BadPath(name=str(name))
    normal = unicodedata.normalize("NFC", name)
    if (
        not normal
        or len(normal) > 500
        or normal.startswith("/")
        or "\\" in normal
        or any(part in ("", ".", "..") for part in normal.split("/"))
        or any(unicodedata.category(c) in ("Cc", "Cs") or c in BIDI_CONTROLS for c in normal)
        or PurePosixPath(normal).is_absolute()
    ):
        raise BadPath(name=name.encode("utf-8", "replace").decode("utf-8")[:200])
    return normal


def check_content(name: str, path: Path) -> None:
    """Refuses pickle-bearing content; validates safetensors headers."""
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        raise UnsafeFormat(name=name)
    with path.open("rb") as handle:
        head = handle.read(16)
        if suffix == ".safetensors":
            _check_safetensors(name, path)
        elif suffix == ".npy":
            _check_npy(name, handle)
        elif suffix == ".npz":
            _check_npz(name, path)
        elif head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
            raise UnsafeFormat(name=name)  # a pickle stream whatever its name


def _check_safetensors(name: str, path: Path) -> None:
    size = path.stat().st_size
    with path.open("rb") as handle:
        raw = handle.read(8)
        if len(raw) != 8:
            raise BadSafetensors(name=name, reason=N_("the file is shorter than its header"))
        (length,) = struct.unpack("<Q", raw)
        if length > MAX_HEADER or 8 + length > size:
            raise BadSafetensors(name=name, reason=N_("the header length is out of range"))
        try:
            header = json.loads(handle.read(length))
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadSafetensors(name=name, reason=N_("the header is not JSON")) from exc
    if not isinstance(header, dict):
        raise BadSafetensors(name=name, reason=N_("the header is not a JSON object"))
    data = size - 8 - length
    spans = []
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = entry["dtype"], entry["shape"], entry["data_offsets"]
            count = 1
            for dim in shape:
                if not isinstance(dim, int) or dim < 0:
                    raise ValueError
                count *= dim
            if dtype not in SAFETENSORS_DTYPES or not 0 <= begin <= end <= data:
                raise ValueError
            if end - begin != count * SAFETENSORS_DTYPES[dtype]:
                raise ValueError
        except (KeyError, TypeError, ValueError) as exc:
            raise BadSafetensors(name=name, reason=N_("a tensor entry is inconsistent")) from exc
        spans.append((begin, end))
    position = 0
    for begin, end in sorted(spans):
        if begin != position:
            raise BadSafetensors(name=name, reason=N_("tensor data overlaps or leaves gaps"))
        position = end
    if position != data:
        raise BadSafetensors(name=name, reason=N_("the data does not match the header"))


def _check_npy(name: str, handle: Any) -> None:
    import numpy as np

    handle.seek(0)
    try:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            _shape, _order, dtype = np.lib.format.read_array_header_1_0(handle)
        else:
            _shape, _order, dtype = np.lib.format.read_array_header_2_0(handle)
    except ValueError as exc:
        raise UnsafeFormat(name=name) from exc
    if dtype.hasobject:
        raise UnsafeFormat(name=name)


def _check_npz(name: str, path: Path) -> None:
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                with archive.open(member) as handle:
                    _check_npy(name, _Seekable(handle.read(4096)))
    except zipfile.BadZipFile as exc:
        raise UnsafeFormat(name=name) from exc


class _Seekable:
    """The first bytes of an archive member, enough to read a .npy header."""

    def __init__(self, data: bytes) -> None:
        import io

        self._io = io.BytesIO(data)

    def seek(self, offset: int) -> int:
        return self._io.seek(offset)

    def read(self, n: int = -1) -> bytes:
        return self._io.read(n)
