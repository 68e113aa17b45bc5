"""Classifier heads shared by the image backbones: a plain linear layer or a cosine (normalized) one."""

from __future__ import annotations

from torch import nn

from imbalanced.models.cosine import NormedLinear
from imbalanced.value_checks import check_choice

HEADS = ("linear", "cosine")


def classifier_head(in_features: int, num_classes: int, head: str = "linear") -> nn.Module:
    """`linear`: logits = W x + b. `cosine`: cosines of normalized features and class weights, in
    [-1, 1], the head LDAM's code uses (pair it with `loss=ldam`, which scales them by s)."""
    check_choice("model.backbone.head", head, HEADS)
    return nn.Linear(in_features, num_classes) if head == "linear" else NormedLinear(in_features, num_classes)
