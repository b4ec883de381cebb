"""Safe formats only: nothing that runs code when loaded enters the commons.

The gate decides by content, never by name alone: a file is accepted only when its bytes are one
of an allow-list of formats that no loader unpickles (safetensors, GGUF, ONNX, Parquet, NumPy
arrays without objects, PNG/JPEG/GIF/WebP images, WAV/FLAC/Ogg audio, UTF-8 text), each
checked by walking its layout. Names still matter in one direction: names that loaders
unpickle (`.pt`, `.pkl`, …) are refused whatever they hold, `.bin` only holds safetensors, and
a name that promises a format (`.onnx`, `.npy`, …) must hold that format. Uploads, commits,
mirrors and bundles all pass here.
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import io
import json
import lzma
import re
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import IO, BinaryIO

from concord.commons import layouts
from concord.commons.pickles import is_pickle
from concord.errors import N_, Invalid

# Names that torch.load, pickle, joblib or dill open: refused whatever they hold (`.bin` is
# the exception when it holds safetensors, as the Hub's `pytorch_model.bin` sometimes does).
PICKLE_SUFFIXES = {".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".dill"}
PICKLE_MEMBERS = (".pkl", ".pickle", ".pt", ".pth", ".ckpt", ".joblib", ".dill")
TEXT_SUFFIXES = {".txt", ".json", ".md", ".csv", ".tsv", ".yaml", ".yml", ".jsonl"}
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
MAX_DEPTH = 64  # JSON nesting: a safetensors header needs 3, configs a handful
MAX_JSON = 64 * 1024 * 1024  # .json files parsed whole up to this size
MAX_MEMBERS = 10_000  # members of an .npz checked (a real one holds a few arrays)
LOOK_MEMBERS = 1_000  # members of another archive looked into to name a pickle
MEMBER_LOOK = 8 * 1024 * 1024  # bytes of an archive member looked at for a pickle
BLOCK = 1024 * 1024
# Line starts tried as pickles in one text file, each for so many opcodes (a pickle that
# calls something takes a dozen; the bound keeps a file of a million such lines linear).
LINE_SCANS = 10_000
LINE_OPCODES = 64
CONTROL = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f]")
LINE_START = re.compile(rb"\n[c(]")


class UnsafeFormat(Invalid):
    code = "commons.unsafe_format"
    message = N_(
        "“{name}” is refused: {reason}. The commons accepts only formats that cannot run code "
        "when they are opened: safetensors, GGUF, ONNX, Parquet, NumPy arrays without objects, "
        "PNG, JPEG, GIF or WebP images, WAV, FLAC or Ogg audio, and UTF-8 text. Convert weights "
        "to safetensors, e.g. "
        "`safetensors.torch.save_file(torch.load(path, weights_only=True), 'model.safetensors')`."
    )


class BadSafetensors(Invalid):
    code = "commons.bad_safetensors"
    message = N_("“{name}” is not a valid safetensors file: {reason}")


class BadPath(Invalid):
    code = "commons.bad_path"
    message = N_(
        "“{name}” is not an acceptable file name: use relative paths of letters, digits, "
        "“-”, “_”, “.” and “/”, without “..”."
    )


PICKLE_NAME = N_("files with this name are opened with pickle")
BIN_NOT_SAFETENSORS = N_("a .bin file is accepted only when it holds safetensors")
PICKLE_CONTENT = N_("the content is a pickle stream, which runs code when it is loaded")
PICKLE_MEMBER = N_("the archive holds a pickle")
ARCHIVE = N_("archives and compressed files are not accepted, except .npz of plain arrays")
ZIP_APPENDED = N_("a zip archive is appended to it, which zip readers would open")
NPY_OBJECTS = N_("the NumPy array holds Python objects, which load through pickle")
NPY_DAMAGED = N_("the NumPy file is damaged or its header does not match its size")
NPZ_MEMBER = N_("an .npz may hold only .npy arrays")
NOT_GGUF = N_("the content is not a valid GGUF file")
NOT_ONNX = N_("the content is not a valid ONNX model")
NOT_PARQUET = N_("the content is not a valid Parquet file")
NOT_IMAGE = N_("the content is not a valid image of the kind its name says")
NOT_AUDIO = N_("the content is not a valid audio file of the kind its name says")
NOT_TEXT = N_("the content is not UTF-8 text")
CONTROL_CHARS = N_("the text holds control characters")
BAD_JSON = N_("the JSON does not parse, or is nested too deeply")
UNKNOWN = N_("the content is not in a format the commons accepts")


def check_path(name: str) -> str:
    """A repository path that can never escape a folder (no absolute, `..` or odd chars)."""
    path = PurePosixPath(name)
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./ ")
    if (
        not name
        or len(name) > 500
        or name.startswith("/")
        or "\\" in name
        or any(part in ("", ".", "..") for part in name.split("/"))
        or not set(name) <= allowed
        or path.is_absolute()
    ):
        raise BadPath(name=name)
    return name


def check_content(name: str, path: Path) -> str:
    """The format of the file at `path` to be published as `name`; refuses all else."""
    with path.open("rb") as handle:
        return check_stream(name, handle, path.stat().st_size)


def check_stream(name: str, handle: BinaryIO, size: int) -> str:
    """The format of `handle`'s bytes (seekable, `size` long) published as `name`: one of
    the allow-list, or a coded refusal naming the file and the reason."""
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in PICKLE_SUFFIXES - {".bin"}:
        raise UnsafeFormat(name=name, reason=PICKLE_NAME)
    handle.seek(0)
    if is_pickle(handle):
        raise UnsafeFormat(name=name, reason=PICKLE_CONTENT)
    handle.seek(0)
    head = handle.read(512)
    found = sniff(head, size)
    if found in ("zip", "tar", "compressed"):
        member = _pickle_inside(handle, found)
        if member is not None:
            raise UnsafeFormat(name=name, reason=PICKLE_MEMBER, member=member)
    if suffix == ".bin" and found != "safetensors":
        raise UnsafeFormat(name=name, reason=BIN_NOT_SAFETENSORS)
    wanted = EXPECTED.get(suffix, found)
    if wanted != found and found in ("zip", "tar", "compressed") and suffix != ".npz":
        raise UnsafeFormat(name=name, reason=ARCHIVE)
    if wanted is None:
        wanted = "text" if _decodes(head, size) else "onnx"
    CHECKS[wanted](name, handle, size)
    if wanted not in ("npz", "text") and layouts.zip_tail(handle, size):
        raise UnsafeFormat(name=name, reason=ZIP_APPENDED)
    return wanted.removesuffix("-named")


def sniff(head: bytes, size: int) -> str | None:
    """The format the first bytes announce, if any (the checks then verify it)."""
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if head[257:262] == b"ustar":
        return "tar"
    if head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd", b"7z\xbc\xaf")):
        return "compressed"
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head.startswith(b"GGUF"):
        return "gguf"
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(layouts.PNG):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "wav"
    if head.startswith(b"fLaC"):
        return "flac"
    if head.startswith(b"OggS"):
        return "ogg"
    if len(head) >= 9 and head[8:9] == b"{":
        (length,) = struct.unpack("<Q", head[:8])
        if 2 <= length <= MAX_HEADER and 8 + length <= size:
            return "safetensors"
    return None


def _decodes(head: bytes, size: int) -> bool:
    """Whether the file opens as UTF-8 text (the text check then reads it all)."""
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head[: min(len(head), size)])
    except UnicodeDecodeError:
        return False
    return not CONTROL.search(head.decode("utf-8", "ignore"))


# --- archives: looked into only to name the pickle they hold ---------------------------------


def _pickle_inside(handle: BinaryIO, kind: str, depth: int = 0) -> str | None:
    """The first member of a zip, tar or compressed stream that is (or holds) a pickle."""
    try:
        if kind == "zip":
            return _zip_pickle(handle, depth)
        if kind == "tar":
            handle.seek(0)
            with tarfile.open(fileobj=handle, mode="r:") as archive:
                return _tar_pickle(archive, depth)
        return _compressed_pickle(handle, depth)
    except (OSError, EOFError, ValueError, RuntimeError, NotImplementedError, zlib.error):
        return None  # damaged or exotic: refused as an archive all the same
    except (tarfile.TarError, zipfile.BadZipFile, lzma.LZMAError):
        return None


def _member_pickle(name: str, data: bytes, depth: int) -> str | None:
    if PurePosixPath(name).name.lower().endswith(PICKLE_MEMBERS) or is_pickle(io.BytesIO(data)):
        return name
    kind = sniff(data[:512], len(data))
    if kind in ("zip", "tar", "compressed") and depth < 3:
        inner = _pickle_inside(io.BytesIO(data), kind, depth + 1)
        return f"{name}/{inner}" if inner is not None else None
    return None


def _zip_pickle(handle: BinaryIO, depth: int) -> str | None:
    handle.seek(0)
    with zipfile.ZipFile(handle) as archive:
        for info in archive.infolist()[:LOOK_MEMBERS]:
            if PurePosixPath(info.filename).name.lower().endswith(PICKLE_MEMBERS):
                return info.filename
            with archive.open(info) as member:
                found = _member_pickle(info.filename, member.read(MEMBER_LOOK), depth)
            if found is not None:
                return found
    return None


def _tar_pickle(archive: tarfile.TarFile, depth: int) -> str | None:
    for count, info in enumerate(archive):
        if count >= LOOK_MEMBERS:
            break
        if not info.isfile():
            continue
        member = archive.extractfile(info)
        data = member.read(MEMBER_LOOK) if member is not None else b""
        found = _member_pickle(info.name, data, depth)
        if found is not None:
            return found
    return None


def _compressed_pickle(handle: BinaryIO, depth: int) -> str | None:
    data = _inflated(handle)
    if data is None:
        return None
    if data[257:262] == b"ustar":
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
            try:
                return _tar_pickle(archive, depth)
            except tarfile.TarError:
                return None
    return _member_pickle("(compressed)", data, depth)


def _inflated(handle: BinaryIO) -> bytes | None:
    """The first bytes a gzip, bzip2 or xz stream inflates to (bounded: a bomb stops here)."""
    handle.seek(0)
    head = handle.read(6)
    handle.seek(0)
    if head.startswith(b"\x1f\x8b"):
        with gzip.GzipFile(fileobj=handle) as stream:
            return stream.read(MEMBER_LOOK)
    if head.startswith(b"BZh"):
        with bz2.BZ2File(handle) as stream:
            return stream.read(MEMBER_LOOK)
    if head.startswith(b"\xfd7zXZ\x00"):
        with lzma.LZMAFile(handle) as stream:
            return stream.read(MEMBER_LOOK)
    return None


# --- the formats ------------------------------------------------------------------------------


def _check_safetensors(name: str, handle: BinaryIO, size: int) -> None:
    handle.seek(0)
    raw = handle.read(8)
    if len(raw) != 8:
        raise BadSafetensors(name=name, reason=N_("the file is shorter than its header"))
    (length,) = struct.unpack("<Q", raw)
    if length > MAX_HEADER or 8 + length > size:
        raise BadSafetensors(name=name, reason=N_("the header length is out of range"))
    text = handle.read(length)
    if json_depth(text) > MAX_DEPTH:
        raise BadSafetensors(name=name, reason=N_("the header is nested too deeply"))
    try:
        header = json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise BadSafetensors(name=name, reason=N_("the header is not JSON")) from exc
    if not isinstance(header, dict):
        raise BadSafetensors(name=name, reason=N_("the header is not a JSON object"))
    data = size - 8 - length
    spans = []
    for key, entry in header.items():
        if key == "__metadata__":
            if not isinstance(entry, dict) or not all(isinstance(v, str) for v in entry.values()):
                raise BadSafetensors(name=name, reason=N_("a tensor entry is inconsistent"))
            continue
        try:
            dtype, shape, (begin, end) = entry["dtype"], entry["shape"], entry["data_offsets"]
            count = 1
            for dim in shape:
                if not isinstance(dim, int) or dim < 0:
                    raise ValueError
                count *= dim
            if not isinstance(begin, int) or not isinstance(end, int):
                raise ValueError
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


STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
BRACKETS = re.compile(rb"[\[\]{}]")


def json_depth(text: bytes) -> int:
    """The deepest nesting of arrays and objects in JSON text, counted without parsing it (the
    parser recurses, and a header 50,000 brackets deep must be refused, not crash it)."""
    depth = deepest = 0
    for match in BRACKETS.finditer(STRINGS.sub(b"", text)):
        depth += 1 if match.group() in (b"[", b"{") else -1
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            break
    return deepest


def _check_text(name: str, handle: BinaryIO, size: int) -> None:
    """UTF-8 without control characters, whose no line starts a pickle; .json must parse.

    One pass in blocks: the line starts of each block are tried, in memory, against that block
    and the next one (up to a block of pickle from each), so a long file is read once whatever
    its number of lines."""
    handle.seek(0)
    decoder = codecs.getincrementaldecoder("utf-8")()
    scans = 0
    previous, starts = b"", list[int]()  # the last block and its line starts not yet tried
    while True:
        block = handle.read(BLOCK)
        try:
            text = decoder.decode(block, final=not block)
        except UnicodeDecodeError as exc:
            raise UnsafeFormat(name=name, reason=NOT_TEXT) from exc
        if CONTROL.search(text):
            raise UnsafeFormat(name=name, reason=CONTROL_CHARS)
        if starts:
            window = io.BytesIO(previous + block)
            for start in starts:
                window.seek(start)
                if is_pickle(window, opcodes=LINE_OPCODES, limit=BLOCK, whole=True):
                    raise UnsafeFormat(name=name, reason=PICKLE_CONTENT)
        if not block:
            break
        # A pickle could start on any line (pickle.load may be handed a seeked file).
        before = previous[-1:] or b"\n"  # the byte before the block: a line starts after it
        starts = [m.start() for m in LINE_START.finditer(before + block)]
        starts = starts[: max(0, LINE_SCANS - scans)]
        scans += len(starts)
        previous = block
    if PurePosixPath(name).suffix.lower() == ".json" and size <= MAX_JSON:
        handle.seek(0)
        data = handle.read()
        try:
            if json_depth(data) > MAX_DEPTH:
                raise ValueError
            json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise UnsafeFormat(name=name, reason=BAD_JSON) from exc


def _check_npy(name: str, handle: BinaryIO, size: int) -> None:
    handle.seek(0)
    _npy_header(name, handle, size)


def _npy_header(name: str, handle: IO[bytes], size: int) -> None:
    """Refuses object dtypes; checks that the header's shape and dtype fill the file."""
    import numpy as np

    try:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, _order, dtype = np.lib.format.read_array_header_1_0(handle)
        elif version in ((2, 0), (3, 0)):
            shape, _order, dtype = np.lib.format.read_array_header_2_0(handle)
        else:
            raise ValueError
        header = handle.tell()
    except (ValueError, OSError, SyntaxError, TypeError) as exc:
        raise UnsafeFormat(name=name, reason=NPY_DAMAGED) from exc
    if dtype.hasobject:
        raise UnsafeFormat(name=name, reason=NPY_OBJECTS)
    count = 1
    for dim in shape:
        count *= int(dim)
    if header + count * dtype.itemsize != size:
        raise UnsafeFormat(name=name, reason=NPY_DAMAGED)


def _check_npz(name: str, handle: BinaryIO, size: int) -> None:
    handle.seek(0)
    try:
        with zipfile.ZipFile(handle) as archive:
            members = archive.infolist()
            if len(members) > MAX_MEMBERS:
                raise UnsafeFormat(name=name, reason=NPZ_MEMBER)
            for info in members:
                if not info.filename.endswith(".npy") or info.is_dir():
                    raise UnsafeFormat(name=name, reason=NPZ_MEMBER, member=info.filename)
                with archive.open(info) as member:
                    _npy_header(name, member, info.file_size)
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError) as exc:
        raise UnsafeFormat(name=name, reason=NPY_DAMAGED) from exc
    except zlib.error as exc:
        raise UnsafeFormat(name=name, reason=NPY_DAMAGED) from exc


def _layout(check: Callable[[BinaryIO, int], None], reason: str) -> Callable[..., None]:
    def run(name: str, handle: BinaryIO, size: int) -> None:
        try:
            check(handle, size)
        except (layouts.Malformed, struct.error, OSError) as exc:
            raise UnsafeFormat(name=name, reason=reason) from exc

    return run


def _refuse(reason: str) -> Callable[..., None]:
    def run(name: str, _handle: BinaryIO, _size: int) -> None:
        raise UnsafeFormat(name=name, reason=reason)

    return run


CHECKS: dict[str, Callable[[str, BinaryIO, int], None]] = {
    "safetensors": _check_safetensors,
    "gguf": _layout(layouts.gguf, NOT_GGUF),
    "onnx": _layout(layouts.onnx, UNKNOWN),
    "parquet": _layout(layouts.parquet, NOT_PARQUET),
    "npy": _check_npy,
    "npz": _check_npz,
    "png": _layout(layouts.png, NOT_IMAGE),
    "jpeg": _layout(layouts.jpeg, NOT_IMAGE),
    "gif": _layout(layouts.gif, NOT_IMAGE),
    "webp": _layout(layouts.webp, NOT_IMAGE),
    "wav": _layout(layouts.wav, NOT_AUDIO),
    "flac": _layout(layouts.flac, NOT_AUDIO),
    "ogg": _layout(layouts.ogg, NOT_AUDIO),
    "text": _check_text,
    "zip": _refuse(ARCHIVE),
    "tar": _refuse(ARCHIVE),
    "compressed": _refuse(ARCHIVE),
}
# A name that promises a format must hold it (an .onnx that is a zip is refused as such).
EXPECTED: dict[str, str | None] = {
    ".safetensors": "safetensors",
    ".bin": "safetensors",
    ".gguf": "gguf",
    ".onnx": "onnx-named",
    ".parquet": "parquet",
    ".npy": "npy",
    ".npz": "npz",
    ".png": "png",
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".gif": "gif",
    ".webp": "webp",
    ".wav": "wav",
    ".flac": "flac",
    ".ogg": "ogg",
    ".opus": "ogg",
    **dict.fromkeys(TEXT_SUFFIXES, "text"),
}
CHECKS["onnx-named"] = _layout(layouts.onnx, NOT_ONNX)


__all__ = ["BadPath", "BadSafetensors", "UnsafeFormat", "check_content", "check_stream"]
