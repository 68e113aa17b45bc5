"""Long-tailed 8x8 digit images (uint8, N x 1 x 8 x 8) and a tiny CNN: a fork's files, not the core's.

The datamodule builds on the template's in-memory datamodule: it returns the images as they are
(uint8, not cast) and implements the contract's optional parts: the backbone's `in_channels`, and a
per-channel normalization fitted on the training split that the model runs before the backbone (so a
checkpoint predicts from raw uint8 images). Class weights, counts and names come from the base class.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from imbalanced.data.in_memory import InMemoryDataModule, Splits
from imbalanced.data.profiles import long_tail_counts

NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


class ChannelNormalize(nn.Module):
    """uint8 images -> float, `(x - mean[c]) / std[c]` per channel; buffers filled by the datamodule."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(channels, 1, 1))
        self.register_buffer("std", torch.ones(channels, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return (x.float() - self.mean) / self.std


class TinyCNN(nn.Module):
    """Two 3x3 convolutions, global average pooling, a linear head."""

    def __init__(self, in_channels: int, num_classes: int, channels: int = 16) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


class DigitImagesDataModule(InMemoryDataModule):
    """scikit-learn's bundled digits as 1x8x8 uint8 images; training split long-tailed by
    `imbalance_ratio` (class 0 the head), balanced val/test splits held out first."""

    def __init__(
        self,
        imbalance_ratio: float = 10.0,
        val_per_class: int = 15,
        test_per_class: int = 30,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.imbalance_ratio = float(imbalance_ratio)
        self.val_per_class = int(val_per_class)
        self.test_per_class = int(test_per_class)

    def load_splits(self) -> Splits:
        from sklearn.datasets import load_digits

        digits = load_digits()
        # pixel values 0..16, scaled to the usual 0..255 of 8-bit images
        images = np.round(digits.images * (255 / 16)).astype(np.uint8)[:, None, :, :]
        labels = digits.target.astype(np.int64)
        held_out = self.val_per_class + self.test_per_class
        n_max = int(np.bincount(labels).min()) - held_out
        sizes = long_tail_counts(n_max, len(NAMES), self.imbalance_ratio)
        rng = np.random.default_rng(self.seed)
        parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
        for c, size in enumerate(sizes):
            members = rng.permutation(np.flatnonzero(labels == c))
            parts["test"].append(members[: self.test_per_class])
            parts["val"].append(members[self.test_per_class : held_out])
            parts["train"].append(members[held_out : held_out + size])
        index = {name: rng.permutation(np.concatenate(chunks)) for name, chunks in parts.items()}
        arrays = [data[index[name]] for name in ("train", "val", "test") for data in (images, labels)]
        return Splits(*arrays, class_names=NAMES)

    # ---- the data-to-model contract (data/in_memory.py) -----------------------------------------
    def backbone_inputs(self) -> dict[str, Any]:
        return {"in_channels": int(self._require_splits().x_train.shape[1])}

    def input_transform(self) -> dict[str, Any]:
        channels = int(self._require_splits().x_train.shape[1])
        return {"_target_": f"{__name__}.ChannelNormalize", "channels": channels}

    def input_transform_state(self) -> dict[str, Tensor]:
        train = torch.as_tensor(self._require_splits().x_train, dtype=torch.float64)
        mean = train.mean(dim=(0, 2, 3))
        std = train.std(dim=(0, 2, 3)).clamp_min(1e-6)
        return {"mean": mean.float()[:, None, None], "std": std.float()[:, None, None]}
