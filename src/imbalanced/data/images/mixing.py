"""MixUp (Zhang et al. 2018) and CutMix (Yun et al. 2019) of whole training batches.

A mixed batch is `(x, y_a, y_b, lam)`: x = lam * x + (1 - lam) * x[perm] (MixUp) or x with a box of
x[perm] pasted in (CutMix, lam = the kept area), y_b = y[perm]. The loss side of mixed targets is
`longtail/mixed_targets.py`. One lambda per batch, as both papers' reference code draws it.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def mix_batch(
    images: Tensor, labels: Tensor, mode: str, alpha: float
) -> tuple[Tensor, Tensor, Tensor, float]:
    """Mix a batch with a random permutation of itself; returns (images, y_a, y_b, lam)."""
    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    perm = torch.randperm(images.shape[0], device=images.device)
    if mode == "mixup":
        mixed = images.float() * lam + images[perm].float() * (1.0 - lam)
        return mixed, labels, labels[perm], lam
    height, width = images.shape[-2:]
    cut = math.sqrt(1.0 - lam)  # a box of area (1 - lam) * H * W, centred at a uniform point, clipped
    cy, cx = int(torch.randint(height, ())), int(torch.randint(width, ()))
    top, bottom = max(cy - int(height * cut) // 2, 0), min(cy + int(height * cut) // 2, height)
    left, right = max(cx - int(width * cut) // 2, 0), min(cx + int(width * cut) // 2, width)
    mixed = images.clone()
    mixed[..., top:bottom, left:right] = images[perm][..., top:bottom, left:right]
    lam = 1.0 - (bottom - top) * (right - left) / (height * width)  # the area actually kept
    return mixed, labels, labels[perm], lam
