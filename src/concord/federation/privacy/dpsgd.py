"""DP-SGD inside a node's local training (Abadi et al. 2016): record-level privacy.

Each step takes the batch's per-example gradients (torch.func: vmap of grad over a functional
call of the module), clips each example's gradient to L2 norm C over all of the model's
weights, sums them, adds N(0, (z·C)²) and divides by the batch size. What it bounds is what the
trained model reveals about any ONE RECORD of the member's data — not the member's whole
contribution, which client-level DP (`mechanism`) bounds.

ε is accounted at the hub (`accountant.record_epsilon`): per round, the member's ⌈n/B⌉·E steps are
subsampled Gaussian events with q = B/n (batches are shuffled, fixed-size; Poisson sampling at
that rate is the usual approximation), composed over every round the member took part in.
The noise generator is seeded from the operating system, never from the round's seed (which
the hub chose and could replay).
"""

from __future__ import annotations

import secrets

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap


def noise_generator() -> torch.Generator:
    generator = torch.Generator()
    generator.manual_seed(secrets.randbits(63))
    return generator


def private_gradient(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    clip_norm: float,
    noise_multiplier: float,
    generator: torch.Generator,
) -> dict[str, torch.Tensor]:
    """The batch's clipped, noised mean gradient, by parameter name."""
    weights = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}

    def loss(w: dict[str, torch.Tensor], xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        out = functional_call(model, (w, buffers), (xi.unsqueeze(0),))
        return F.cross_entropy(out, yi.unsqueeze(0))

    per_example = vmap(grad(loss), in_dims=(None, 0, 0))(weights, x, y)
    norms = torch.sqrt(sum((g.reshape(len(y), -1) ** 2).sum(dim=1) for g in per_example.values()))
    scale = torch.clamp(clip_norm / (norms + 1e-12), max=1.0)
    out = {}
    for k, g in per_example.items():
        summed = (g * scale.view(-1, *([1] * (g.dim() - 1)))).sum(dim=0)
        noise = torch.normal(
            0.0, noise_multiplier * clip_norm, size=summed.shape, generator=generator
        )
        out[k] = (summed + noise) / len(y)
    return out
