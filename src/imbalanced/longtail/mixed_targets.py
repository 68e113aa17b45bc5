"""The loss of a MixUp/CutMix batch (mixed targets y_a, y_b with weight lam), for every loss.

Defined per sample as the mixture of the two targets' weighted losses:

    l_i = lam * w[y_a] * loss(z_i, y_a) + (1 - lam) * w[y_b] * loss(z_i, y_b)

and, with the `mean` reduction, divided by the batch's summed mixed weights
sum_i (lam * w[y_a] + (1 - lam) * w[y_b]). So a mixed sample's class weight is lam * w_a +
(1 - lam) * w_b; with lam = 1 it is the unmixed loss exactly. Cross entropy is linear in the target,
so this is the cross entropy with the soft target lam * onehot(y_a) + (1 - lam) * onehot(y_b);
logit adjustment adds tau * log(prior) to the logits before either term (the adjustment does not
depend on the target); LDAM subtracts each term's own target margin. Per-class loss tracking gives
class y_a the lam share of a sample and class y_b the rest.
"""

from __future__ import annotations

import torch
from torch import Tensor

from imbalanced.longtail.losses import ImbalanceLoss, _nonzero


def mixed_loss(
    criterion: ImbalanceLoss,
    logits: Tensor,
    y_a: Tensor,
    y_b: Tensor,
    lam: float,
    class_weights: Tensor,
    class_counts: Tensor,
) -> tuple[Tensor, Tensor, Tensor]:
    """(training scalar, per-class loss sums, per-class sample shares) of a mixed batch."""
    w_a, w_b = class_weights.float()[y_a], class_weights.float()[y_b]
    part_a = lam * w_a * criterion.per_sample(logits, y_a, class_counts)
    part_b = (1.0 - lam) * w_b * criterion.per_sample(logits, y_b, class_counts)
    weighted = part_a + part_b
    if criterion.reduction == "sum":
        scalar = weighted.sum()
    elif criterion.reduction == "none" and criterion.normalization == "batch_size":
        scalar = weighted.sum() / weighted.numel()
    else:  # mean, or none normalized by the weight sum
        scalar = weighted.sum() / _nonzero((lam * w_a + (1.0 - lam) * w_b).sum())
    num_classes = class_weights.numel()
    sums = torch.zeros(num_classes, device=logits.device)
    sums.index_add_(0, y_a, part_a.detach()).index_add_(0, y_b, part_b.detach())
    shares = torch.zeros(num_classes, device=logits.device)
    shares.index_add_(0, y_a, torch.full_like(w_a, lam)).index_add_(0, y_b, torch.full_like(w_b, 1.0 - lam))
    return scalar, sums, shares
