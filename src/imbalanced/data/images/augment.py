"""Image augmentation for uint8 image batches: where it runs depends on the data backend.

- `data.backend=in_memory` (the fast path): the uint8 images stay in memory (on the GPU with
  `data.on_device=true`) and each training batch is augmented there as batched tensor ops after
  the transfer (`augment_batch`: random crop with zero padding, horizontal flip, random erasing), so
  a GPU is not starved by CPU workers.
- `data.backend=dataloader`: torchvision transforms v2 per sample in the loader workers
  (`sample_transform`: RandomCrop(32, padding=4), RandomHorizontalFlip, AutoAugment's CIFAR10
  policy, RandomErasing).

Normalization is not augmentation: `ImageNormalize` runs inside the model (its `input_transform`),
so a checkpoint predicts from raw uint8 images. MixUp/CutMix mix whole batches (`mixing.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from omegaconf import OmegaConf
from torch import Tensor, nn

from imbalanced.errors import UserError
from imbalanced.value_checks import check_choice, check_int, check_number

MIX_MODES = ("none", "mixup", "cutmix")
ERASING_SCALE = (0.02, 0.33)  # torchvision RandomErasing's defaults
ERASING_RATIO = (0.3, 3.3)


@dataclass(frozen=True)
class AugmentSettings:
    """`data.augment.*`: what each training image goes through (validation/test images: nothing)."""

    crop_padding: int = 4  # RandomCrop(size, padding=crop_padding); 0 = no crop
    flip: bool = True  # horizontal flip with probability 0.5
    autoaugment: bool = False  # AutoAugment, CIFAR10 policy (data.backend=dataloader)
    erasing: float = 0.0  # RandomErasing probability (0 = off)
    mix: str = "none"  # none | mixup | cutmix (mixing.py)
    mix_alpha: float = 1.0  # lambda ~ Beta(alpha, alpha)

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> AugmentSettings:
        if config is None:
            return cls()
        if OmegaConf.is_config(config):
            config = OmegaConf.to_container(config, resolve=True)
        unknown = sorted(set(config) - set(cls.__dataclass_fields__))
        if unknown:
            raise UserError(
                f"data.augment.{unknown[0]} is not a setting; allowed: {', '.join(cls.__dataclass_fields__)}"
            )
        return cls(**config)

    def __post_init__(self) -> None:
        check_int("data.augment.crop_padding", self.crop_padding, minimum=0)
        for key in ("flip", "autoaugment"):
            if not isinstance(getattr(self, key), bool):
                raise UserError(f"data.augment.{key}={getattr(self, key)!r} is invalid; allowed: true, false")
        check_number("data.augment.erasing", self.erasing, 0.0, 1.0)
        check_choice("data.augment.mix", self.mix, MIX_MODES)
        check_number("data.augment.mix_alpha", self.mix_alpha, low=0.0, low_open=True)

    def check_backend(self, backend: str) -> None:
        if self.autoaugment and backend != "dataloader":
            raise UserError(
                "data.augment.autoaugment=true needs data.backend=dataloader (AutoAugment draws "
                "a policy per image, in the loader workers); the in-memory path does crop, flip "
                "and erasing only"
            )


# ---- the fast path: batched ops on the training device ------------------------------------
def random_crop(images: Tensor, padding: int) -> Tensor:
    """Each image of the (N, C, H, W) batch cropped back to H x W at a random offset of its
    zero-padded copy: torchvision's RandomCrop(size, padding) per image, in one gather."""
    if padding == 0:
        return images
    n, _, height, width = images.shape
    padded = nn.functional.pad(images, (padding, padding, padding, padding))
    dy = torch.randint(0, 2 * padding + 1, (n, 1), device=images.device)
    dx = torch.randint(0, 2 * padding + 1, (n, 1), device=images.device)
    rows = (dy + torch.arange(height, device=images.device))[:, :, None]  # N x H x 1
    cols = (dx + torch.arange(width, device=images.device))[:, None, :]  # N x 1 x W
    batch = torch.arange(n, device=images.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)  # N x C x H x W


def random_flip(images: Tensor) -> Tensor:
    """Horizontal flip of each image with probability 0.5."""
    flip = torch.rand(images.shape[0], device=images.device) < 0.5
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


def random_erasing(images: Tensor, probability: float) -> Tensor:
    """RandomErasing (value 0, torchvision's scale/ratio ranges) per image with `probability`;
    a rectangle drawn too large for the image is clipped instead of redrawn."""
    if probability <= 0:
        return images
    n, _, height, width = images.shape
    device = images.device
    area = height * width * torch.empty(n, device=device).uniform_(*ERASING_SCALE)
    log_ratio = torch.empty(n, device=device).uniform_(*torch.tensor(ERASING_RATIO).log().tolist())
    ratio = log_ratio.exp()
    h = (area * ratio).sqrt().round().clamp(1, height)
    w = (area / ratio).sqrt().round().clamp(1, width)
    top = (torch.rand(n, device=device) * (height - h + 1)).floor()
    left = (torch.rand(n, device=device) * (width - w + 1)).floor()
    erase = torch.rand(n, device=device) < probability
    r = torch.arange(height, device=device)[None, :, None]
    c = torch.arange(width, device=device)[None, None, :]
    mask = (
        (r >= top[:, None, None])
        & (r < (top + h)[:, None, None])
        & (c >= left[:, None, None])
        & (c < (left + w)[:, None, None])
        & erase[:, None, None]
    )
    return images.masked_fill(mask[:, None], 0)


def augment_batch(images: Tensor, settings: AugmentSettings) -> Tensor:
    """The in-memory path's augmentation of one training batch (any dtype, any device)."""
    images = random_crop(images, settings.crop_padding)
    if settings.flip:
        images = random_flip(images)
    return random_erasing(images, settings.erasing)


# ---- the DataLoader path: torchvision transforms v2 per sample ------------------------------
def sample_transform(settings: AugmentSettings, size: int) -> Callable[[Tensor], Tensor]:
    """The per-sample training transform (uint8 C x H x W tensor in, uint8 out) for loader workers."""
    try:
        from torchvision.transforms import v2  # lazily: torchvision is the `vision` extra
    except ImportError:
        raise UserError(
            "data.augment needs torchvision, which is not installed: install the `vision` extra (README, "
            "Install), or turn the augmentation off (data.augment.crop_padding=0 data.augment.flip=false)"
        ) from None

    steps: list[Any] = []
    if settings.crop_padding:
        steps.append(v2.RandomCrop(size, padding=settings.crop_padding))
    if settings.flip:
        steps.append(v2.RandomHorizontalFlip())
    if settings.autoaugment:
        steps.append(v2.AutoAugment(v2.AutoAugmentPolicy.CIFAR10))
    if settings.erasing:
        steps.append(v2.RandomErasing(p=settings.erasing, value=0))
    return v2.Compose(steps) if steps else nn.Identity()


class ImageNormalize(nn.Module):
    """uint8 (or float 0..255) images -> float `(x - mean[c]) / std[c]`; the model's input transform.

    mean/std are buffers filled from the training split (`input_transform_state`), so checkpoints
    carry them. `channels_last=true` hands the backbone NHWC tensors (faster convolutions on GPUs).
    """

    def __init__(self, channels: int, channels_last: bool = False) -> None:
        super().__init__()
        self.channels_last = bool(channels_last)
        self.register_buffer("mean", torch.zeros(channels, 1, 1))
        self.register_buffer("std", torch.ones(channels, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        x = (x.float() - self.mean) / self.std
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x
