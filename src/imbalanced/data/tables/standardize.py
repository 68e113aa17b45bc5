"""Feature standardization fitted on the training split, as a module the model runs before its backbone.

A table datamodule fits the mean and scale of every feature column on its training split and hands
the model `{"_target_": "imbalanced.data.tables.standardize.Standardize", "num_features": F}` (built in the
model's `__init__`, so `load_from_checkpoint(path)` rebuilds it) plus the fitted values (copied into
the buffers at fit time, saved in the checkpoint's state_dict). The model then takes raw features,
in training as in `eval.py`, `predict.py` and a notebook.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn


class Standardize(nn.Module):
    """`(x - mean) / scale` per feature; identity until fitted values are copied into the buffers."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(int(num_features)))
        self.register_buffer("scale", torch.ones(int(num_features)))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.scale


def fit_standardization(x_train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and standard deviation (float64) of the training matrix; a constant column
    gets scale 1, so it passes through centred instead of dividing by zero."""
    mean = x_train.mean(axis=0, dtype=np.float64)
    scale = x_train.std(axis=0, dtype=np.float64)
    return mean, np.where(scale > 0, scale, 1.0)
