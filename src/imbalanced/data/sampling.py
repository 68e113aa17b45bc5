"""Class-aware sampling (Kang et al. 2020): draw samples so that p(class c) is proportional to n_c^q.

q=1 is instance-balanced sampling (the data's own frequencies, with replacement), q=0.5 square-root
sampling, q=0 class-balanced sampling (every class equally often). Within a class every sample is
equally likely, so sample i is drawn with probability n_{y_i}^(q-1) / sum_c n_c^q.

One epoch is one global draw of `num_samples` (the training-set size) indices with replacement,
made from a generator seeded with `seed + epoch` (class by `torch.multinomial`, then a uniform
sample within the class); every DDP rank makes the
same global draw and keeps its own strided share, so ranks see disjoint positions of that draw
(a sample drawn twice may of course appear twice, as oversampling intends).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from imbalanced.data.in_memory_batches import IndexBatchSampler
from imbalanced.errors import UserError

SAMPLER_KEYS = ("q",)


def validate_sampler_settings(settings: Mapping[str, Any] | None) -> float | None:
    """The q of a `sampler` config (None: plain shuffling); raises UserError when invalid."""
    if not settings:
        return None
    unknown = set(settings) - set(SAMPLER_KEYS)
    if unknown:
        raise UserError(f"sampler has unknown key(s) {sorted(unknown)}; valid: {', '.join(SAMPLER_KEYS)}")
    q = settings.get("q")
    if q is None:
        return None
    if isinstance(q, bool) or not isinstance(q, (int, float)) or not math.isfinite(q) or not 0 <= q <= 1:
        raise UserError(
            f"sampler.q={q!r} must be a number in [0, 1] (0 class-balanced, 0.5 square root, "
            "1 instance-balanced) or null for plain shuffling"
        )
    return float(q)


def class_probabilities(counts: Tensor, q: float) -> Tensor:
    """p(class c) = n_c^q / sum_c' n_c'^q over the classes present (absent classes get 0)."""
    counts = counts.double()
    weights = torch.where(counts > 0, counts.clamp_min(1.0) ** q, torch.zeros_like(counts))
    return weights / weights.sum()


class ClassAwareBatchSampler(IndexBatchSampler):
    """`IndexBatchSampler` whose epoch order is a seeded n^q draw with replacement.

    Two vectorized steps per epoch: draw each position's class from p(class), then a uniform
    sample of that class (no per-sample probability vector, so any dataset size works).
    """

    def __init__(self, labels: Tensor, batch_size: int, q: float = 0.0, **kwargs: Any) -> None:
        kwargs.setdefault("pad", True)
        labels = torch.as_tensor(labels, dtype=torch.long)
        super().__init__(len(labels), batch_size, shuffle=True, **kwargs)
        self.q = float(q)
        self.counts = torch.bincount(labels)
        self.class_p = class_probabilities(self.counts, self.q)
        self.by_class = torch.argsort(labels, stable=True)  # sample indices grouped by class
        self.starts = torch.cumsum(self.counts, 0) - self.counts

    def _global_order(self) -> Tensor:
        # shuffle=False (`debug=overfit`'s FixedTrainBatches): the same draw, epoch 0's, every epoch
        generator = torch.Generator().manual_seed(self.seed + (self.epoch if self.shuffle else 0))
        classes = torch.multinomial(self.class_p, self.dataset_size, replacement=True, generator=generator)
        offsets = (
            torch.rand(self.dataset_size, generator=generator, dtype=torch.float64) * self.counts[classes]
        ).long()
        offsets = torch.minimum(offsets, self.counts[classes] - 1)
        return self.by_class[self.starts[classes] + offsets]
