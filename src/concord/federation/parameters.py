"""Model parameters on the wire and at rest: safetensors (named tensors), never pickles."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

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
