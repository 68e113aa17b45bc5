"""`data.augment` of `data=image_folder`: augmentation that is safe for any images by default.

A user's images may be digits, text, X-rays or photos: a horizontal flip changes the meaning of the
first ones, so it is never on unless asked (`data.augment.flip=true` for photos). A small random
translation (random crop of the zero-padded image; `crop_padding: null` pads by an eighth of the
smaller side: 4 pixels at 32x32, 3 at 28x28, 1 at 8x8) is safe for all of them, but measured at the
default budget on small digit sets it did not help (docs/images-quality.md), so the default is no
augmentation. The transforms run per image in the DataLoader workers (augment.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from omegaconf import OmegaConf
from torch import Tensor

from imbalanced.data.images.augment import AugmentSettings, sample_transform
from imbalanced.errors import UserError

FOLDER_DEFAULTS = {"crop_padding": 0, "flip": False}


def folder_augment_settings(config: Mapping[str, Any] | None, size: tuple[int, int]) -> AugmentSettings:
    """The settings for images of `size` (H, W); `crop_padding: null` becomes min(H, W) // 8 (>= 1)."""
    if OmegaConf.is_config(config):
        config = OmegaConf.to_container(config, resolve=True)
    values = {**FOLDER_DEFAULTS, **dict(config or {})}
    if values.get("crop_padding") is None:
        values["crop_padding"] = max(1, min(size) // 8)
    if values.get("mix", "none") != "none":
        raise UserError(
            f"data.augment.mix={values['mix']} is not available for data=image_folder "
            "(it mixes whole batches on the in-memory path: data=cifar10_lt)"
        )
    return AugmentSettings.from_config(values)


def folder_train_transform(
    config: Mapping[str, Any] | None, size: tuple[int, int]
) -> Callable[[Tensor], Tensor] | None:
    """The per-image training transform, or None when every augmentation is off."""
    settings = folder_augment_settings(config, size)
    if not (settings.crop_padding or settings.flip or settings.autoaugment or settings.erasing):
        return None
    return sample_transform(settings, size)
