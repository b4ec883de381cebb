"""Update compression for thin links: what a node sends instead of its whole trained model.

A node sends the DIFFERENCE between the model it trained and the round's start model, made
small in one of two ways (the job spec's `compression`):

- `q8`: 8-bit linear quantisation per tensor — each value of the delta becomes one byte,
  q = round((d − lo) / step), with the tensor's `lo` and `step` sent beside it (float32), so
  d ≈ lo + q·step. A quarter of float32's bytes.
- `topk`: top-k sparsification per tensor — only the k = ⌈fraction · size⌉ entries of largest
  magnitude travel, as (index uint32, value float32) pairs: 8 bytes per kept entry.

Both keep ERROR FEEDBACK at the node (Seide et al. 2014; Stich et al. 2018; Karimireddy et al.
2019): what a round's message failed to carry (the intended delta minus what was sent) is kept
and added to the next round's delta, so nothing a node learned is lost, only delayed.

The hub decodes an update back to a whole model (start + decoded delta) before anything else
looks at it, so the checks, the weighted-mean strategies, DP clipping and the robust rules see
what they always see. On the wire it is safetensors, never a pickle: for a tensor `n`,
q8 sends `n` (uint8, the tensor's shape), `n@lo` and `n@step` (float32, shape (1,)); topk sends
`n@index` (uint32, (k,), strictly increasing) and `n@value` (float32, (k,)). A tensor that is
not floating point travels whole as `n@raw`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from concord.errors import N_
from concord.federation.parameters import BadParameters, Parameters
from concord.governance.jobspec import Compression

F = NDArray[Any]
LEVELS = 255  # q8: the largest code


def _floating(value: F) -> bool:
    return bool(np.issubdtype(value.dtype, np.floating))


def kept(size: int, fraction: float) -> int:
    """k for a tensor of `size` entries: at least one entry, at most all of them."""
    return max(1, min(size, math.ceil(fraction * size)))


def quantise(delta: F) -> tuple[NDArray[np.uint8], float, float]:
    """8-bit codes of one tensor's delta, with its `lo` and `step`."""
    flat = delta.astype(np.float64).reshape(-1)
    lo = float(flat.min()) if flat.size else 0.0
    hi = float(flat.max()) if flat.size else 0.0
    step = (hi - lo) / LEVELS
    if step <= 0 or not math.isfinite(step):
        return np.zeros(delta.shape, dtype=np.uint8), lo, 0.0
    codes = np.rint((delta.astype(np.float64) - lo) / step)
    return np.clip(codes, 0, LEVELS).astype(np.uint8), lo, step


def sparsify(delta: F, fraction: float) -> tuple[NDArray[np.uint32], NDArray[np.float32]]:
    """The k entries of largest magnitude of one tensor (flattened), indices ascending."""
    flat = delta.reshape(-1)
    k = kept(flat.size, fraction)
    if k >= flat.size:
        index = np.arange(flat.size, dtype=np.uint32)
    else:
        index = np.sort(np.argpartition(np.abs(flat), flat.size - k)[flat.size - k :])
    return index.astype(np.uint32), flat[index].astype(np.float32)


def encode(
    spec: Compression, delta: Parameters, residual: Parameters | None = None
) -> tuple[Parameters, Parameters]:
    """The message for `delta` (plus the carried `residual`), and the new residual: what this
    message does not carry. Float tensors only are compressed; the others travel whole."""
    message: Parameters = {}
    carried: Parameters = {}
    for name, value in delta.items():
        if not _floating(value):
            message[f"{name}@raw"] = np.ascontiguousarray(value)
            continue
        intended = value.astype(np.float32)
        if residual is not None and name in residual and residual[name].shape == value.shape:
            intended = intended + residual[name].astype(np.float32)
        if spec.kind == "q8":
            codes, lo, step = quantise(intended)
            message[name] = codes
            message[f"{name}@lo"] = np.array([lo], dtype=np.float32)
            message[f"{name}@step"] = np.array([step], dtype=np.float32)
        else:
            index, values = sparsify(intended, spec.share)
            message[f"{name}@index"] = index
            message[f"{name}@value"] = values
        sent = _decoded_delta(spec, message, name, value.shape)
        carried[name] = (intended - sent).astype(np.float32)
    return message, carried


def _decoded_delta(spec: Compression, message: Parameters, name: str, shape: Any) -> F:
    """One tensor's delta as the hub will read it from `message` (float32, `shape`)."""
    size = int(np.prod(shape, dtype=np.int64))
    if spec.kind == "q8":
        codes = message[name]
        lo = np.float32(message[f"{name}@lo"][0])
        step = np.float32(message[f"{name}@step"][0])
        return (lo + codes.astype(np.float32) * step).reshape(shape)
    out = np.zeros(size, dtype=np.float32)
    out[message[f"{name}@index"].astype(np.int64)] = message[f"{name}@value"]
    return out.reshape(shape)


def expected_names(spec: Compression, start: Parameters) -> set[str]:
    names: set[str] = set()
    for name, value in start.items():
        if not _floating(value):
            names.add(f"{name}@raw")
        elif spec.kind == "q8":
            names |= {name, f"{name}@lo", f"{name}@step"}
        else:
            names |= {f"{name}@index", f"{name}@value"}
    return names


def decode(spec: Compression, message: Parameters, start: Parameters) -> Parameters:
    """The whole model a node's compressed update stands for: start + decoded delta, in the
    start's dtypes. Refuses (BadParameters) a message that is not exactly what `encode`
    makes for this model: other names, dtypes or sizes, indices out of order or out of range,
    values not finite."""
    if set(message) != expected_names(spec, start):
        raise BadParameters(reason=N_("the compressed update's tensors differ from the model's"))
    model: Parameters = {}
    for name, ref in start.items():
        if not _floating(ref):
            raw = message[f"{name}@raw"]
            if raw.shape != ref.shape or raw.dtype != ref.dtype:
                raise BadParameters(reason=N_("a tensor has the wrong shape"))
            model[name] = raw
            continue
        _check(spec, message, name, ref)
        delta = _decoded_delta(spec, message, name, ref.shape)
        model[name] = (ref.astype(np.float64) + delta).astype(ref.dtype)
        if not np.isfinite(model[name]).all():
            raise BadParameters(reason=N_("a tensor holds NaN or infinity"))
    return model


def _check(spec: Compression, message: Parameters, name: str, ref: F) -> None:
    bad = BadParameters(reason=N_("the compressed update is malformed"))
    if spec.kind == "q8":
        codes, lo, step = message[name], message[f"{name}@lo"], message[f"{name}@step"]
        if codes.dtype != np.uint8 or codes.shape != ref.shape:
            raise bad
        for scalar in (lo, step):
            if scalar.dtype != np.float32 or scalar.shape != (1,) or not np.isfinite(scalar).all():
                raise bad
        if step[0] < 0:
            raise bad
        return
    index, values = message[f"{name}@index"], message[f"{name}@value"]
    size = int(np.prod(ref.shape, dtype=np.int64))
    if index.dtype != np.uint32 or values.dtype != np.float32:
        raise bad
    if index.ndim != 1 or values.shape != index.shape or index.size > size:
        raise bad
    if index.size and (int(index[-1]) >= size or (np.diff(index.astype(np.int64)) <= 0).any()):
        raise bad
    if not np.isfinite(values).all():
        raise bad


def difference(trained: Parameters, start: Parameters) -> Parameters:
    """trained − start per tensor (float tensors in float32; the others as trained)."""
    return {
        k: (v.astype(np.float64) - start[k].astype(np.float64)).astype(np.float32)
        if _floating(v)
        else v
        for k, v in trained.items()
    }
