"""`data=digits`: scikit-learn's bundled 8x8 digits (no download) made long-tailed, CIFAR-LT style.

From each class, `test_per_class` and `val_per_class` samples are held out first (balanced val and
test splits); the rest of class i is then subsampled to n_i = n_max * ratio^(-i/(C-1)) training
samples (Cao et al. 2019), where n_max is the smallest number of samples any class has left, so
class 0 is the head and class 9 the tail. All choices are seeded by `seed`. Features are the 64
raw pixel values (0..16); the model standardizes them with statistics of the training split
(data/tables/feature_table.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from imbalanced.data.in_memory import Splits
from imbalanced.data.profiles import check_profile, long_tail_counts
from imbalanced.data.tables.feature_table import FeatureTableDataModule
from imbalanced.errors import UserError
from imbalanced.value_checks import check_int


class DigitsDataModule(FeatureTableDataModule):
    def __init__(
        self,
        imbalance_ratio: float = 10.0,
        val_per_class: int = 20,
        test_per_class: int = 40,
        profile: str = "exponential",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_profile(10, imbalance_ratio, profile)
        check_int("data.val_per_class", val_per_class, minimum=1)
        check_int("data.test_per_class", test_per_class, minimum=1)
        self.imbalance_ratio = float(imbalance_ratio)
        self.val_per_class = int(val_per_class)
        self.test_per_class = int(test_per_class)
        self.profile = profile

    def load_splits(self) -> Splits:
        from sklearn.datasets import load_digits

        digits = load_digits()
        x, y = digits.data.astype(np.float32), digits.target.astype(np.int64)
        num_classes = int(y.max()) + 1
        per_class = np.bincount(y, minlength=num_classes)
        held_out = self.val_per_class + self.test_per_class
        if self.val_per_class < 1 or self.test_per_class < 1:
            raise UserError(
                f"data.val_per_class={self.val_per_class} and data.test_per_class={self.test_per_class} "
                "must both be >= 1"
            )
        n_max = int(per_class.min()) - held_out
        if n_max < 1:
            raise UserError(
                f"data.val_per_class + data.test_per_class = {held_out} leaves no training sample: "
                f"the smallest digit class has {per_class.min()} samples"
            )
        try:
            train_sizes = long_tail_counts(n_max, num_classes, self.imbalance_ratio, self.profile)
        except ValueError as error:
            raise UserError(str(error)) from None
        rng = np.random.default_rng(self.seed)
        parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
        for c in range(num_classes):
            members = rng.permutation(np.flatnonzero(y == c))
            parts["test"].append(members[: self.test_per_class])
            parts["val"].append(members[self.test_per_class : held_out])
            parts["train"].append(members[held_out : held_out + train_sizes[c]])
        index = {name: rng.permutation(np.concatenate(chunks)) for name, chunks in parts.items()}
        return Splits(
            x[index["train"]],
            y[index["train"]],
            x[index["val"]],
            y[index["val"]],
            x[index["test"]],
            y[index["test"]],
            class_names=[str(c) for c in range(num_classes)],
            feature_names=[f"pixel_{r}_{c}" for r in range(8) for c in range(8)],
        )
