"""Local SGD of a cohort of clients as one batched computation (torch.func: functional_call,
grad, vmap), following exactly the plain schedule of `tasks.network` (a test checks it).

Shapes: C clients, P_k a parameter's shape, L padded positions per client, b batch width.
    params[k]   (C, *P_k)   one model per client, stacked
    x           (C, L, 784) each client's examples in its epoch order, then zero padding
    valid       (C, L)      1 where a real example sits

Unequal data sizes: clients are sorted by their number of steps per epoch, longest first, so
the clients still training at step j are a prefix [0, k_j) of the stack; step j runs on that
prefix only (views, no copies), and a mask hides the padding inside a client's last batch.
Equal sizes (the paper's 600 examples each) give k_j = C and full batches: no waste at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch.func import functional_call, vmap

from concord.federation.parameters import Parameters
from concord.federation.tasks.base import NotVectorisable
from concord.federation.tasks.network import (
    NetworkTask,
    as_inputs,
    epoch_order,
    local_config,
    steps_per_epoch,
)

Tensors = dict[str, torch.Tensor]


__all__ = ["NotVectorisable", "train_cohort", "train_stacked"]


def _client_loss(
    module: torch.nn.Module, mu: float
) -> Callable[[Tensors, torch.Tensor, torch.Tensor, torch.Tensor, Tensors], torch.Tensor]:
    def loss(
        p: Tensors, xb: torch.Tensor, yb: torch.Tensor, mb: torch.Tensor, p0: Tensors
    ) -> torch.Tensor:
        logits = functional_call(module, p, (xb,))  # (b, classes)
        ce = F.cross_entropy(logits, yb, reduction="none")  # (b,)
        value = (ce * mb).sum() / mb.sum().clamp(min=1.0)  # mean over real examples
        if mu:
            value = value + mu / 2 * sum(((p[k] - p0[k]) ** 2).sum() for k in p)
        return value

    return loss


def _match_layout(stack: Tensors, grads: Tensors) -> None:
    """Stores each stacked parameter in its gradient's memory layout. Autograd returns a
    linear layer's weight gradient transposed, (C, in, out) in memory; an update that walks
    (C, out, in) against it is strided and took 5x the time of the whole forward pass."""
    for name, g in grads.items():
        full = stack[name]
        if g.stride() != full.stride() and g.stride()[0] == full[0].numel():
            relaid = torch.empty_strided(full.shape, g.stride())
            relaid.copy_(full)
            stack[name] = relaid


def train_cohort(
    task: NetworkTask,
    params: Parameters,
    xs: list[NDArray[Any]],
    ys: list[NDArray[Any]],
    config: dict[str, Any],
    seeds: Sequence[int],
) -> list[Parameters]:
    """`train_stacked` for clients given as lists of arrays; their models in input order."""
    n = np.array([len(x) for x in xs], dtype=np.int64)
    first = as_inputs(xs[0][:1])
    x = np.zeros((len(xs), int(n.max()), *first.shape[1:]), dtype=np.float32)
    y = np.zeros((len(xs), int(n.max())), dtype=np.int64)
    for i, (xi, yi) in enumerate(zip(xs, ys, strict=True)):
        x[i, : n[i]] = as_inputs(xi)
        y[i, : n[i]] = yi
    stack = train_stacked(task, params, x, y, n, config, seeds)
    return [{k: v[i].copy() for k, v in stack.items()} for i in range(len(xs))]


def _stacked_inputs(x: NDArray[Any]) -> torch.Tensor:
    """(C, N, …) stored examples → (C, N, features) float32, without a copy when possible."""
    rows = x.reshape(x.shape[0] * x.shape[1], *x.shape[2:]) if x.size else x
    flat = as_inputs(rows) if x.size else np.zeros((0, 1), np.float32)
    return torch.from_numpy(flat.reshape(x.shape[0], x.shape[1], -1))


def train_stacked(
    task: NetworkTask,
    params: Parameters,
    x_all: NDArray[Any],
    y_all: NDArray[Any],
    sizes: NDArray[np.int64],
    config: dict[str, Any],
    seeds: Sequence[int],
) -> Parameters:
    """Trains every client of the cohort from `params`: `x_all` (C, N, …) and `y_all` (C, N)
    hold each client's examples, padded to N; `sizes` (C,) the real counts. Returns every
    parameter stacked (C, *P_k), in input order.

    Raises `NotVectorisable` when the model cannot be batched, before any work is lost."""
    epochs, batch_size, lr, mu = local_config(config)
    module = task.module()
    names = [k for k, _ in module.named_parameters()]
    if any(True for _ in module.buffers()):  # e.g. batch norm's running statistics
        raise NotVectorisable("models with buffers are trained one client at a time")
    c = len(sizes)
    n = np.asarray(sizes, dtype=np.int64)
    steps = np.array([steps_per_epoch(int(m), batch_size) for m in n])
    rank = np.argsort(-steps, kind="stable")  # longest first: active clients are a prefix
    reordered = bool((rank != np.arange(c)).any())
    n, steps = n[rank], steps[rank]
    n_max = int(n.max())
    width = n_max if batch_size <= 0 else min(batch_size, n_max)  # b
    length = int(steps.max()) * width  # L
    data = _stacked_inputs(x_all[:, :n_max])  # (C, N, 784)
    labels = torch.from_numpy(np.ascontiguousarray(y_all[:, :n_max], dtype=np.int64))
    if reordered:
        data, labels = data[torch.from_numpy(rank)], labels[torch.from_numpy(rank)]
    positions = torch.arange(length)
    valid = (positions[None, :] < torch.from_numpy(n)[:, None]).float()  # (C, L)
    start = {k: torch.from_numpy(np.asarray(params[k])) for k in names}
    stack = {k: v.expand(c, *v.shape).clone() for k, v in start.items()}  # (C, *P_k)
    rngs: list[np.random.Generator] = []  # drawn from only when an epoch shuffles
    # vmap the forward only and let ordinary autograd differentiate the sum of the clients'
    # losses (each client's parameters get its own loss's gradient): vmap over torch.func.grad
    # runs convolution backward ~15x slower on CPU than autograd through the grouped conv.
    losses = vmap(_client_loss(module, mu), in_dims=(0, 0, 0, 0, None))
    active = [int((steps > s).sum()) for s in range(int(steps.max()))]  # k_j
    # One batch holds every example of every client (FedSGD, B = 0): no shuffle to draw, and
    # the data are used as they lie, without the per-epoch gather.
    whole = length == n_max and all(not 0 < batch_size < int(m) for m in n)
    checked = False
    for _ in range(epochs):
        if whole:
            x, y = data, labels
        else:
            rngs = rngs or [np.random.default_rng(seeds[int(j)]) for j in rank]
            order = torch.zeros((c, length), dtype=torch.int64)  # padding → row 0, masked
            for i in range(c):
                order[i, : n[i]] = torch.from_numpy(epoch_order(rngs[i], int(n[i]), batch_size))
            rows = torch.arange(c)[:, None]
            x = data[rows, order]  # (C, L, 784): one gather per epoch, batches are then views
            y = labels[rows, order]  # (C, L)
        for s, k in enumerate(active):
            cols = slice(s * width, (s + 1) * width)
            view = {name: t[:k].detach().requires_grad_() for name, t in stack.items()}
            try:
                total = losses(view, x[:k, cols], y[:k, cols], valid[:k, cols], start).sum()
            except (RuntimeError, NotImplementedError) as exc:
                if checked:
                    raise
                raise NotVectorisable(str(exc)) from exc
            grads = torch.autograd.grad(total, list(view.values()))
            if not checked:
                _match_layout(stack, dict(zip(view, grads, strict=True)))
                checked = True
            with torch.no_grad():  # one fused pass per tensor, no temporary lr·g
                torch._foreach_add_([stack[name][:k] for name in view], list(grads), alpha=-lr)
    if not reordered:
        return {k: stack[k].numpy() for k in names}
    back = torch.from_numpy(np.argsort(rank))
    return {k: stack[k][back].numpy() for k in names}
