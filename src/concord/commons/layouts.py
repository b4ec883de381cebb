"""The byte layouts of the binary formats the commons accepts, checked without a loader.

Each check reads the file through a seekable handle, walks its structure as far as needed to
know that the whole file is that format (not a magic number glued onto something else), and
raises `Malformed` otherwise. Nothing here decodes tensors or images; it only walks framing.
"""

from __future__ import annotations

import struct
import zlib
from typing import BinaryIO

from concord.commons.pickles import is_pickle

MAX_COUNT = 1_000_000  # tensors, metadata entries, chunks…: far above any real file
MAX_STRING = 16 * 1024 * 1024


class Malformed(ValueError):
    """The bytes do not follow the format's layout."""


def _read(handle: BinaryIO, size: int) -> bytes:
    data = handle.read(size)
    if len(data) != size:
        raise Malformed("truncated")
    return data


def _pickle_after(handle: BinaryIO, offset: int) -> None:
    """Refuses a pickle glued right behind a magic number (a polyglot)."""
    handle.seek(offset)
    if is_pickle(handle, limit=1024 * 1024):
        raise Malformed("a pickle follows the magic number")


def zip_tail(handle: BinaryIO, size: int) -> bool:
    """Whether a zip's end record closes the file: zip readers (torch.load's among them) look
    for it from the end, so a zip appended to any other format would still open as a zip."""
    tail = min(size, 22 + 65535)
    handle.seek(size - tail)
    data = handle.read(tail)
    position = data.rfind(b"PK\x05\x06")
    while position >= 0:
        record = data[position : position + 22]
        if len(record) == 22:
            (comment,) = struct.unpack("<H", record[20:22])
            if position + 22 + comment == len(data):
                return True
        position = data.rfind(b"PK\x05\x06", 0, position)
    return False


# --- GGUF -------------------------------------------------------------------------------------

GGUF_SCALARS = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
GGUF_STRING, GGUF_ARRAY = 8, 9
GGML_MAX_DIMS = 4


def gguf(handle: BinaryIO, size: int) -> None:
    """GGUF v2/v3: magic, version, then every metadata entry and tensor description parsed,
    each tensor's data offset aligned and inside the file."""
    handle.seek(0)
    magic, version, tensors, entries = struct.unpack("<4sIQQ", _read(handle, 24))
    if magic != b"GGUF" or version not in (2, 3):
        raise Malformed("not GGUF v2 or v3")
    if tensors > MAX_COUNT or entries > MAX_COUNT:
        raise Malformed("counts out of range")
    alignment = 32
    for _ in range(entries):
        key = _gguf_string(handle, size)
        (kind,) = struct.unpack("<I", _read(handle, 4))
        value = _gguf_value(handle, size, kind, depth=0)
        if key == b"general.alignment" and kind == 4:
            alignment = value if isinstance(value, int) else alignment
    if alignment <= 0 or alignment & (alignment - 1):
        raise Malformed("bad alignment")
    offsets = []
    for _ in range(tensors):
        _gguf_string(handle, size)
        (dims,) = struct.unpack("<I", _read(handle, 4))
        if dims > GGML_MAX_DIMS:
            raise Malformed("too many dimensions")
        _read(handle, 8 * dims)
        _kind, offset = struct.unpack("<IQ", _read(handle, 12))
        offsets.append(offset)
    start = -(-handle.tell() // alignment) * alignment
    for offset in offsets:
        if offset % alignment or start + offset > size:
            raise Malformed("tensor data outside the file")


def _gguf_string(handle: BinaryIO, size: int) -> bytes:
    (length,) = struct.unpack("<Q", _read(handle, 8))
    if length > MAX_STRING or handle.tell() + length > size:
        raise Malformed("string out of range")
    return _read(handle, length)


def _gguf_value(handle: BinaryIO, size: int, kind: int, depth: int) -> int | bytes | None:
    if kind in GGUF_SCALARS:
        data = _read(handle, GGUF_SCALARS[kind])
        return int.from_bytes(data, "little") if kind == 4 else data
    if kind == GGUF_STRING:
        return _gguf_string(handle, size)
    if kind == GGUF_ARRAY and depth == 0:
        item, count = struct.unpack("<IQ", _read(handle, 12))
        if count > size:
            raise Malformed("array out of range")
        if item in GGUF_SCALARS:
            width = GGUF_SCALARS[item] * count
            if handle.tell() + width > size:
                raise Malformed("array out of range")
            handle.seek(width, 1)
        else:
            for _ in range(count):
                _gguf_value(handle, size, item, depth + 1)
        return None
    raise Malformed("unknown metadata type")


# --- Parquet ----------------------------------------------------------------------------------


def parquet(handle: BinaryIO, size: int) -> None:
    """PAR1 at both ends, a footer length that fits, a footer that opens as Thrift's
    FileMetaData does (field 1, version, an i32), and no pickle behind the first magic."""
    if size < 12:
        raise Malformed("too short")
    handle.seek(0)
    if _read(handle, 4) != b"PAR1":
        raise Malformed("no leading magic")
    handle.seek(size - 8)
    length, magic = struct.unpack("<I4s", _read(handle, 8))
    if magic != b"PAR1" or length < 2 or length > size - 12:
        raise Malformed("bad footer")
    handle.seek(size - 8 - length)
    if _read(handle, 1) != b"\x15":
        raise Malformed("footer is not FileMetaData")
    _pickle_after(handle, 4)


# --- images -----------------------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n"


def png(handle: BinaryIO, size: int) -> None:
    """Every chunk walked with its CRC checked, IHDR first, IEND last and at the very end."""
    handle.seek(0)
    if _read(handle, 8) != PNG:
        raise Malformed("no PNG signature")
    first = True
    while True:
        length, kind = struct.unpack(">I4s", _read(handle, 8))
        if length > 2**31 - 1 or not kind.isalpha() or handle.tell() + length + 4 > size:
            raise Malformed("bad chunk")
        if first and kind != b"IHDR":
            raise Malformed("IHDR is not first")
        first = False
        crc = zlib.crc32(kind)
        left = length
        while left:
            block = _read(handle, min(left, 1024 * 1024))
            crc = zlib.crc32(block, crc)
            left -= len(block)
        if struct.unpack(">I", _read(handle, 4))[0] != crc:
            raise Malformed("bad chunk checksum")
        if kind == b"IEND":
            if handle.tell() != size:
                raise Malformed("bytes after IEND")
            return


def jpeg(handle: BinaryIO, size: int) -> None:
    handle.seek(0)
    if size < 4 or _read(handle, 3) != b"\xff\xd8\xff":
        raise Malformed("no JPEG signature")
    handle.seek(size - 2)
    if _read(handle, 2) != b"\xff\xd9":
        raise Malformed("does not end with EOI")


def gif(handle: BinaryIO, size: int) -> None:
    handle.seek(0)
    if size < 14 or _read(handle, 6) not in (b"GIF87a", b"GIF89a"):
        raise Malformed("no GIF signature")
    handle.seek(size - 1)
    if _read(handle, 1) != b";":
        raise Malformed("no GIF trailer")


def webp(handle: BinaryIO, size: int) -> None:
    _riff(handle, size, b"WEBP")


def _riff(handle: BinaryIO, size: int, form: bytes) -> None:
    """A RIFF container of `form` whose chunks (id, length, data, pad) end exactly at its end."""
    handle.seek(0)
    riff, length, kind = struct.unpack("<4sI4s", _read(handle, 12))
    if riff != b"RIFF" or kind != form or length + 8 != size:
        raise Malformed("bad RIFF container")
    position = 12
    for _ in range(MAX_COUNT):
        if position == size:
            return
        handle.seek(position)
        name, chunk = struct.unpack("<4sI", _read(handle, 8))
        if not all(32 <= byte < 127 for byte in name):
            raise Malformed("bad RIFF chunk")
        position += 8 + chunk + (chunk & 1)
        if position > size:
            raise Malformed("RIFF chunk runs past the end")
    raise Malformed("too many chunks")


# --- audio (speech datasets) -----------------------------------------------------------------


def wav(handle: BinaryIO, size: int) -> None:
    _riff(handle, size, b"WAVE")


def flac(handle: BinaryIO, size: int) -> None:
    handle.seek(0)
    if size < 42 or _read(handle, 4) != b"fLaC":
        raise Malformed("no FLAC signature")
    _pickle_after(handle, 4)


def ogg(handle: BinaryIO, size: int) -> None:
    """The first page's header: capture pattern, stream version 0, a beginning-of-stream flag."""
    handle.seek(0)
    head = _read(handle, 27) if size >= 27 else b""
    if head[:4] != b"OggS" or head[4] != 0 or not head[5] & 0x02:
        raise Malformed("no Ogg first page")
    _pickle_after(handle, 4)


# --- ONNX: a protobuf ModelProto, walked field by field -------------------------------------

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5
# ModelProto's fields (onnx.proto): number → wire type.
MODEL_FIELDS = {
    1: VARINT,  # ir_version
    2: LENGTH,  # producer_name
    3: LENGTH,  # producer_version
    4: LENGTH,  # domain
    5: VARINT,  # model_version
    6: LENGTH,  # doc_string
    7: LENGTH,  # graph
    8: LENGTH,  # opset_import
    14: LENGTH,  # metadata_props
    20: LENGTH,  # training_info
    25: LENGTH,  # functions
    26: LENGTH,  # configuration
}
GRAPH_FIELDS = {
    1: LENGTH,  # node
    2: LENGTH,  # name
    5: LENGTH,  # initializer
    10: LENGTH,  # doc_string
    11: LENGTH,  # input
    12: LENGTH,  # output
    13: LENGTH,  # value_info
    14: LENGTH,  # quantization_annotation
    15: LENGTH,  # sparse_initializer
    16: LENGTH,  # metadata_props
}


def onnx(handle: BinaryIO, size: int) -> None:
    """A ModelProto: only its known fields, with their wire types, lengths inside the file, an
    ir_version and a graph whose own fields parse the same way; nothing left over."""
    handle.seek(0)
    seen = _fields(handle, size, MODEL_FIELDS, nested={7: GRAPH_FIELDS})
    if 1 not in seen or 7 not in seen:
        raise Malformed("no ir_version or graph")


def _fields(
    handle: BinaryIO,
    end: int,
    fields: dict[int, int],
    nested: dict[int, dict[int, int]] | None = None,
) -> set[int]:
    seen: set[int] = set()
    count = 0
    while handle.tell() < end:
        count += 1
        if count > MAX_COUNT * 10:
            raise Malformed("too many fields")
        key = _varint(handle)
        number, wire = key >> 3, key & 7
        if fields.get(number) != wire:
            raise Malformed("unknown field")
        if wire == VARINT:
            _varint(handle)
        elif wire == LENGTH:
            length = _varint(handle)
            stop = handle.tell() + length
            if stop > end:
                raise Malformed("field runs past its message")
            if nested and number in nested:
                _fields(handle, stop, nested[number])
            handle.seek(stop)
        else:
            handle.seek(8 if wire == FIXED64 else 4, 1)
        seen.add(number)
    if handle.tell() != end:
        raise Malformed("message runs past its end")
    return seen


def _varint(handle: BinaryIO) -> int:
    value = 0
    for shift in range(0, 70, 7):
        byte = _read(handle, 1)[0]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value
    raise Malformed("varint too long")
