"""Losses for imbalanced classification.

Every loss takes logits and integer targets plus the LightningModule's `class_weights` and
`class_counts` buffers, and reduces like PyTorch's own losses:

- `mean`: sum_i w_{y_i} * l_i / sum_i w_{y_i}  (what `F.cross_entropy(weight=w)` does: it divides by
  the summed weights of the batch's targets, not by the batch size),
- `sum`: sum_i w_{y_i} * l_i,
- `none`: the per-sample weighted losses w_{y_i} * l_i; the LightningModule tracks them per class
  and turns them into the training scalar with `normalize(...)`: `weight_sum` (default, equals
  `mean`) or `batch_size` (divides by the number of samples).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from imbalanced.errors import UserError

REDUCTIONS = ("mean", "sum", "none")
NORMALIZATIONS = ("weight_sum", "batch_size")


class ImbalanceLoss(nn.Module):
    """Base class: subclasses implement `per_sample` (unweighted per-sample losses)."""

    def __init__(self, reduction: str = "mean", normalize: str = "weight_sum") -> None:
        super().__init__()
        if reduction not in REDUCTIONS:
            raise UserError(f"loss.reduction={reduction!r} is unknown; valid: {', '.join(REDUCTIONS)}")
        if normalize not in NORMALIZATIONS:
            raise UserError(
                f"loss.normalize={normalize!r} is unknown; valid: {', '.join(NORMALIZATIONS)}"
            )
        self.reduction = reduction
        self.normalization = normalize

    def per_sample(self, logits: Tensor, targets: Tensor, class_counts: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(
        self, logits: Tensor, targets: Tensor, class_weights: Tensor, class_counts: Tensor
    ) -> Tensor:
        sample_weights = class_weights[targets]
        weighted = self.per_sample(logits, targets, class_counts) * sample_weights
        if self.reduction == "none":
            return weighted
        if self.reduction == "sum":
            return weighted.sum()
        return weighted.sum() / sample_weights.sum()

    def normalize(self, weighted: Tensor, targets: Tensor, class_weights: Tensor) -> Tensor:
        """Turn `reduction="none"` output into a scalar with the configured normalization."""
        if self.normalization == "batch_size":
            return weighted.sum() / weighted.numel()
        return weighted.sum() / class_weights[targets].sum()


class CrossEntropy(ImbalanceLoss):
    """(Weighted) cross entropy; `mean` and `sum` use PyTorch's fused kernel."""

    def per_sample(self, logits: Tensor, targets: Tensor, class_counts: Tensor) -> Tensor:
        return F.cross_entropy(logits, targets, reduction="none")

    def forward(
        self, logits: Tensor, targets: Tensor, class_weights: Tensor, class_counts: Tensor
    ) -> Tensor:
        if self.reduction == "none":
            return super().forward(logits, targets, class_weights, class_counts)
        # Logits may be bf16 under mixed precision; the weights stay float32.
        return F.cross_entropy(
            logits.float(), targets, weight=class_weights.float(), reduction=self.reduction
        )


def per_class_mean(values: Tensor, targets: Tensor, num_classes: int) -> tuple[Tensor, Tensor]:
    """Sums and counts of `values` per target class (for per-class loss tracking)."""
    sums = torch.zeros(num_classes, dtype=torch.float32, device=values.device)
    sums.index_add_(0, targets, values.detach().float())
    counts = torch.bincount(targets, minlength=num_classes).float()
    return sums, counts
