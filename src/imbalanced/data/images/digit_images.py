"""`data=digits_images`: scikit-learn's bundled 8x8 digits as 1x8x8 uint8 images (no download).

The split is `data=digits`'s, exactly (the same seeded long-tailed training split and balanced
val/test splits, data/tables/sklearn_digits.py); the pixels (0..16) are scaled to 0..255 and kept
as uint8. The model normalizes them with the training split's mean and std (`ChannelNormalize`, saved in the
checkpoint). For `python train.py data=digits_images model=small_cnn` on a fresh machine.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import Tensor, as_tensor

from imbalanced.data.contract import RawInputs
from imbalanced.data.images.normalize import channel_statistics, normalize_config
from imbalanced.data.images.raw_inputs import read_image_inputs
from imbalanced.data.in_memory import InMemoryDataModule, Splits
from imbalanced.data.tables.sklearn_digits import DigitsDataModule


class DigitImagesDataModule(InMemoryDataModule):
    def __init__(
        self,
        imbalance_ratio: float = 10.0,
        val_per_class: int = 20,
        test_per_class: int = 40,
        profile: str = "exponential",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        # the table version checks the settings and draws the split
        self.digits = DigitsDataModule(
            imbalance_ratio=imbalance_ratio,
            val_per_class=val_per_class,
            test_per_class=test_per_class,
            profile=profile,
            seed=self.seed,
        )

    def load_splits(self) -> Splits:
        table = self.digits.load_splits()

        def images(x: np.ndarray) -> np.ndarray:  # (N, 64) pixels 0..16 -> (N, 1, 8, 8) uint8 0..255
            return np.round(x * (255 / 16)).astype(np.uint8).reshape(-1, 1, 8, 8)

        return Splits(
            images(table.x_train),
            table.y_train,
            images(table.x_val),
            table.y_val,
            images(table.x_test),
            table.y_test,
            class_names=table.class_names,
        )

    # ---- the data-to-model contract (data/in_memory.py) -----------------------------------------
    def backbone_inputs(self) -> dict[str, Any]:
        return {"in_channels": 1, "image_size": [8, 8], "in_features": 64}

    def input_transform(self) -> dict[str, Any]:
        return normalize_config(1)

    def input_transform_state(self) -> dict[str, Tensor]:
        return channel_statistics(as_tensor(self._require_splits().x_train))

    def input_spec(self) -> dict[str, Any]:
        """eval.py and predict.py read image files for this checkpoint as 1-channel 8x8 images."""
        return {"images": {"channels": 1, "image_size": [8, 8]}}

    @classmethod
    def read_inputs(cls, path: str, **kwargs: Any) -> RawInputs:
        """eval.py `data.test_path` / predict.py `data.path`: image files (data/images/raw_inputs.py)."""
        return read_image_inputs(path, **kwargs)
