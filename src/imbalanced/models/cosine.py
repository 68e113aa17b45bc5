"""An MLP with a cosine (normalized linear) classifier head, as LDAM's official code uses."""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from imbalanced.models.mlp import MLP


class NormedLinear(nn.Module):
    """Logits are cosines between the L2-normalized features and class weight vectors, in [-1, 1]."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(nn.init.xavier_uniform_(nn.Linear(in_features, out_features).weight))

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(x, dim=1) @ F.normalize(self.weight, dim=1).t()


class CosineMLP(MLP):
    """`MLP` whose last layer is `NormedLinear`: pair it with `loss=ldam` (which scales by s)."""

    def __init__(self, in_features: int, num_classes: int, **kwargs: Any) -> None:
        super().__init__(in_features, num_classes, **kwargs)
        self.classifier = NormedLinear(self.classifier.in_features, num_classes)
