"""Image normalization the model runs before its backbone, so checkpoints predict from raw uint8 images.

Images travel as uint8 `(N, C, H, W)` (4x less memory and host-to-device traffic than float32); the
model's `ChannelNormalize` scales them to [0, 1] and standardizes each channel with a mean and std
(in [0, 1] units, as torchvision writes ImageNet's) fitted on the training split or given by the
user. Its buffers are saved in the checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


class ChannelNormalize(nn.Module):
    """uint8 (or float 0..255) images -> `(x / 255 - mean[c]) / std[c]`, per channel."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(channels, 1, 1))
        self.register_buffer("std", torch.ones(channels, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return (x.float() / 255.0 - self.mean) / self.std


def normalize_config(channels: int) -> dict[str, object]:
    return {"_target_": f"{__name__}.ChannelNormalize", "channels": int(channels)}


def channel_statistics(images: Tensor) -> dict[str, Tensor]:
    """Per-channel mean and std (in [0, 1] units) of uint8 images `(N, C, H, W)`: the buffers of
    `ChannelNormalize`."""
    x = images.to(torch.float64) / 255.0
    mean = x.mean(dim=(0, 2, 3))
    std = x.std(dim=(0, 2, 3)).clamp_min(1e-3)  # a constant channel must not divide by ~0
    return {"mean": mean.float()[:, None, None], "std": std.float()[:, None, None]}


def given_statistics(mean: Sequence[float], std: Sequence[float]) -> dict[str, Tensor]:
    return {
        "mean": torch.tensor([float(m) for m in mean])[:, None, None],
        "std": torch.tensor([float(s) for s in std])[:, None, None],
    }
