"""Model downloads as a lossless difference from a model the node already holds.

A node that trained round r−1 holds that round's start model; round r's start model differs
from it only by one round's aggregate step. The hub sends, per tensor, the bitwise XOR of the
two models' bytes (exact: base XOR delta gives the target back bit for bit, which
floating-point subtraction would not), regrouped into byte planes — every value's first byte,
then every second byte, and so on — so that the planes of sign and exponent, which one round
barely changes, are long runs of zeros; then zlib. Coordinates a round did not change (most of
them under top-k updates) are zero in every plane.

The message is zlib over a safetensors file of uint8 planes, one tensor per model tensor: no
pickle, and the node decompresses it with a bound (the size of the model it holds), so a
crafted body cannot exhaust its memory. The node verifies the rebuilt model's SHA-256 against
the hub's before it trains on it, and falls back to the whole model if it cannot.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
from numpy.typing import NDArray

from concord.errors import N_
from concord.federation.parameters import (
    BadParameters,
    Parameters,
    from_safetensors,
    to_safetensors,
)

LEVEL = 6  # zlib: level 9 gains ~1 % here for twice the hub's time
SLACK = 1024 * 1024  # room for the safetensors header beyond the tensors' bytes


def _planes(value: NDArray[Any]) -> NDArray[np.uint8]:
    """A tensor's bytes, (n, itemsize) → byte planes, (itemsize · n,)."""
    flat = np.ascontiguousarray(value).reshape(-1).view(np.uint8)
    return np.ascontiguousarray(flat.reshape(-1, value.dtype.itemsize).T).reshape(-1)


def _unplanes(planes: NDArray[np.uint8], like: NDArray[Any]) -> NDArray[Any]:
    """`_planes` undone: byte planes back into a tensor shaped and typed like `like`."""
    size = like.dtype.itemsize
    raw = np.ascontiguousarray(planes.reshape(size, -1).T).reshape(-1)
    return raw.view(like.dtype).reshape(like.shape)


def _same_layout(base: Parameters, target: Parameters) -> bool:
    return set(base) == set(target) and all(
        base[k].shape == target[k].shape and base[k].dtype == target[k].dtype for k in base
    )


def encode(base: Parameters, target: Parameters) -> bytes | None:
    """The delta that turns `base` into `target`, or None when they differ in layout (names,
    shapes, dtypes): then only the whole model will do."""
    if not _same_layout(base, target):
        return None
    planes = {
        name: _planes(target[name]) ^ _planes(base[name])  # (itemsize · n,)
        for name in target
    }
    return zlib.compress(to_safetensors(planes), LEVEL)


def apply(base: Parameters, body: bytes) -> Parameters:
    """`target` from `base` and the hub's delta; BadParameters if the body does not fit."""
    limit = sum(v.nbytes for v in base.values()) + SLACK
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(body, limit)
    except zlib.error as exc:
        raise BadParameters(reason=N_("the model difference is not readable")) from exc
    if inflater.unconsumed_tail or not inflater.eof:
        raise BadParameters(reason=N_("the model difference is not readable"))
    planes = from_safetensors(raw)
    if set(planes) != set(base):
        raise BadParameters(reason=N_("the tensor names differ from the model's"))
    target: Parameters = {}
    for name, value in base.items():
        plane = planes[name]
        if plane.dtype != np.uint8 or plane.shape != (value.nbytes,):
            raise BadParameters(reason=N_("a tensor has the wrong shape"))
        target[name] = _unplanes(_planes(value) ^ plane, value)
    return target
