"""Hostile files for the commons' format gate, and safe ones it must keep accepting.

Every hostile file is generated here, in memory, and never loaded: the pickles are written with
`pickle.dumps` (which calls nothing) from an object whose `__reduce__` names `os.system`.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os
import pickle
import struct
import tarfile
import zipfile
import zlib
from dataclasses import dataclass

import numpy as np
from safetensors.numpy import save

UNSAFE = "commons.unsafe_format"
BAD_SAFETENSORS = "commons.bad_safetensors"
NAMES = [
    ".txt",
    ".json",
    ".md",
    ".csv",
    ".yaml",
    ".bin",
    ".pt",
    ".pth",
    ".ckpt",
    ".pkl",
    ".joblib",
    ".safetensors",
    ".onnx",
    ".gguf",
    ".parquet",
    ".png",
    ".npy",
    ".npz",
]


class Payload:
    """Pickled, it says: call os.system("true"). It is only ever pickled, never unpickled."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("true",))


@dataclass(frozen=True)
class Hostile:
    name: str  # the file name it is uploaded under
    data: bytes
    code: str  # the refusal expected at upload


def pickled(protocol: int, label: str = "") -> bytes:
    return pickle.dumps({"weights": [1.0, 2.0], "hook": Payload(), "label": label}, protocol)


def torch_zip() -> bytes:
    """The layout `torch.save` writes: a zip whose archive/data.pkl is the pickle."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("archive/data.pkl", pickled(2))
        archive.writestr("archive/byteorder", "little")
        archive.writestr("archive/data/0", b"\x00" * 16)
        archive.writestr("archive/version", "3\n")
    return out.getvalue()


def tar_of(member: str, data: bytes, mode: str = "w") -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode=mode) as archive:  # type: ignore[call-overload]
        info = tarfile.TarInfo(member)
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def npy(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    out = io.BytesIO()
    np.save(out, array, allow_pickle=allow_pickle)
    return out.getvalue()


def npz(**arrays: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.savez(out, allow_pickle=True, **arrays)  # type: ignore[arg-type]
    return out.getvalue()


def varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes([*out, value])


def deep_safetensors(depth: int = 50_000) -> bytes:
    header = b"[" * depth + b"]" * depth
    return struct.pack("<Q", len(header)) + header


def hostile() -> list[Hostile]:
    """At least 40 files that must never enter the commons, each with the code it earns."""
    files = [
        Hostile(f"proto{protocol}{suffix}", pickled(protocol, suffix), UNSAFE)
        for protocol in range(6)
        for suffix in NAMES
    ]
    zipped = torch_zip()
    files += [
        Hostile(f"torch{suffix}", zipped, UNSAFE) for suffix in (".onnx", ".bin", ".pt", ".zip")
    ]
    files += [
        Hostile("torch-renamed.safetensors", zipped, UNSAFE),
        Hostile("torch-renamed.npz", zipped, UNSAFE),
        Hostile("torch-renamed.txt", zipped, UNSAFE),
        Hostile("torch-renamed", zipped, UNSAFE),
        Hostile("pickle.tar", tar_of("model.pkl", pickled(4)), UNSAFE),
        Hostile("pickle.tar.gz", tar_of("weights", pickled(4), "w:gz"), UNSAFE),
        Hostile("pickle-tar.txt", tar_of("weights", pickled(0)), UNSAFE),
        Hostile("pickle.gz", gzip.compress(pickled(2)), UNSAFE),
        Hostile("pickle.bz2", bz2.compress(pickled(3)), UNSAFE),
        Hostile("pickle.xz", lzma.compress(pickled(4)), UNSAFE),
        Hostile("gzipped.json", gzip.compress(pickled(0)), UNSAFE),
        Hostile("objects.npy", npy(np.array([{"x": 1}], dtype=object), True), UNSAFE),
        Hostile("objects.npz", npz(a=np.arange(3.0), b=np.array([Payload], dtype=object)), UNSAFE),
        Hostile("objects-renamed.txt", npy(np.array([{"x": 1}], dtype=object), True), UNSAFE),
        Hostile("polyglot.png", b"\x89PNG\r\n\x1a\n" + pickled(2), UNSAFE),
        Hostile("polyglot0.png", b"\x89PNG\r\n\x1a\n" + pickled(0), UNSAFE),
        Hostile("polyglot.safetensors", struct.pack("<Q", 40) + pickled(2), BAD_SAFETENSORS),
        Hostile("polyglot-length.txt", struct.pack("<Q", 40) + pickled(2), UNSAFE),
        Hostile("polyglot.parquet", b"PAR1" + pickled(0) + b"PAR1", UNSAFE),
        Hostile("polyglot2.parquet", b"PAR1" + pickled(2) + b"\x04\x00\x00\x00PAR1", UNSAFE),
        Hostile("polyglot.gguf", b"GGUF" + pickled(2), UNSAFE),
        Hostile("polyglot.wav", b"RIFF" + struct.pack("<I", 200) + b"WAVE" + pickled(2), UNSAFE),
        Hostile("polyglot.flac", b"fLaC" + pickled(0), UNSAFE),
        Hostile("zip-appended.gguf", gguf_bytes() + zipped, UNSAFE),
        # A valid ModelProto whose doc_string (field 6) is a whole torch zip, ending the file.
        Hostile("zip-inside.onnx", onnx_bytes() + b"\x32" + varint(len(zipped)) + zipped, UNSAFE),
        Hostile("polyglot0.gguf", b"GGUF" + pickled(0), UNSAFE),
        Hostile("appended.json", b'{"a": 1}\n' + pickled(0), UNSAFE),
        Hostile("appended2.json", b'{"a": 1}' + pickled(2), UNSAFE),
        Hostile("line.md", b"# Notes\n\nSome text.\n" + pickled(0) + b"\nmore\n", UNSAFE),
        Hostile("unfinished.txt", pickled(0)[:-1], UNSAFE),  # REDUCE runs before the end
        Hostile("deep.safetensors", deep_safetensors(), BAD_SAFETENSORS),
        Hostile("deep.json", b"[" * 50_000 + b"]" * 50_000, UNSAFE),
        Hostile("unknown.dat", bytes(range(256)) * 64, UNSAFE),
    ]
    return files


# --- safe files ---------------------------------------------------------------------------


def png_bytes() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\x80"))
        + chunk(b"IEND", b"")
    )


def gguf_bytes() -> bytes:
    """GGUF v3: one string metadata entry, no tensors."""
    key, value = b"general.name", b"tiny"
    return (
        b"GGUF"
        + struct.pack("<IQQ", 3, 0, 1)
        + struct.pack("<Q", len(key))
        + key
        + struct.pack("<I", 8)
        + struct.pack("<Q", len(value))
        + value
    )


def onnx_bytes() -> bytes:
    """A ModelProto by hand: ir_version 8, producer "concord", a graph named "g"."""
    graph = b"\x12\x01g"  # GraphProto.name (field 2, length-delimited)
    return b"\x08\x08" + b"\x12\x07concord" + b"\x3a" + bytes([len(graph)]) + graph


def parquet_bytes() -> bytes:
    """The framing of a Parquet file: PAR1, a FileMetaData-like footer, its length, PAR1."""
    footer = b"\x15\x02\x19\x0c\x00"  # field 1 (version, i32), then an empty list and stop
    return b"PAR1" + footer + struct.pack("<I", len(footer)) + b"PAR1"


def wav_bytes(pickle_inside: bytes = b"") -> bytes:
    """A RIFF/WAVE file: a fmt chunk and eight silent 16-bit samples (or other bytes)."""
    samples = pickle_inside or b"\x00\x00" * 8
    fmt = struct.pack("<HHIIHH", 1, 1, 16000, 32000, 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(samples)) + samples
    return b"RIFF" + struct.pack("<I", len(body)) + body


def safe() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    weights = save({"w": rng.standard_normal((8, 8)).astype(np.float32)})
    return {
        "model.safetensors": weights,
        "pytorch_model.bin": weights,  # a .bin is fine when it holds safetensors
        "config.json": json.dumps({"hidden_size": 8, "layers": [1, 2]}).encode(),
        "README.md": b"---\nlicense: apache-2.0\n---\n# A model\n\ncd folder\nls\n...\n",
        "data.csv": b"a,b\n1,2\n3,4\n",
        "params.yaml": b"lr: 0.01\nlayers:\n  - 8\n",
        "vocab.txt": b"[PAD]\ncat\ndog\ncounties\nlegend\nbathroom\n.\n",
        "table.parquet": parquet_bytes(),
        "figure.png": png_bytes(),
        "floats.npy": npy(rng.standard_normal(5)),
        "floats.npz": npz(a=rng.standard_normal(3), b=np.arange(4)),
        "tiny.gguf": gguf_bytes(),
        "tiny.onnx": onnx_bytes(),
        "speech.wav": wav_bytes(),
    }
