"""`data=synthetic`: a seeded Gaussian-cluster problem with a controllable imbalance profile."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.datasets import make_classification

from imbalanced.data.in_memory import Splits
from imbalanced.data.profiles import check_profile, long_tail_counts
from imbalanced.data.splitting import check_fractions, check_min_train_rows, stratified_split
from imbalanced.data.tables.feature_table import FeatureTableDataModule
from imbalanced.errors import UserError
from imbalanced.value_checks import check_int, check_number


class SyntheticDataModule(FeatureTableDataModule):
    """`n_samples` rows split over `num_classes` classes by the imbalance `profile`.

    Class 0 is the most frequent; with `profile=exponential` class i gets a share proportional to
    `imbalance_ratio^(-i/(C-1))`, with `profile=step` the last `step_fraction` of the classes get
    `1/imbalance_ratio` of the others' share. Train/val/test are split stratified from the whole, so
    every split has the same profile.
    """

    def __init__(
        self,
        n_samples: int = 20000,
        n_features: int = 20,
        num_classes: int = 5,
        imbalance_ratio: float = 20.0,
        profile: str = "exponential",
        step_fraction: float = 0.5,
        class_sep: float = 1.0,
        n_informative: int | None = None,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        min_train_rows: int = 20,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_int("data.n_samples", n_samples, minimum=1)
        check_int("data.n_features", n_features, minimum=2)
        check_profile(num_classes, imbalance_ratio, profile, step_fraction)
        check_number("data.class_sep", class_sep, low=0.0, low_open=True)
        if n_informative is not None:
            check_int("data.n_informative", n_informative, minimum=2)
        check_fractions(val_fraction, test_fraction)
        self.min_train_rows = check_min_train_rows(min_train_rows)
        self.n_samples = int(n_samples)
        self.n_features = int(n_features)
        self.num_classes_requested = int(num_classes)
        self.imbalance_ratio = float(imbalance_ratio)
        self.profile = profile
        self.step_fraction = float(step_fraction)
        self.class_sep = float(class_sep)
        self.n_informative = n_informative
        self.val_fraction = float(val_fraction)
        self.test_fraction = float(test_fraction)

    def class_sizes(self) -> np.ndarray:
        """Per-class sample counts of the whole generated set."""
        try:
            shape = long_tail_counts(
                10**6,
                self.num_classes_requested,
                self.imbalance_ratio,
                self.profile,
                self.step_fraction,
            )
        except ValueError as error:
            raise UserError(str(error)) from None
        sizes = np.floor(self.n_samples * shape / shape.sum()).astype(np.int64)
        # every split needs each class at least once for a stratified split
        if sizes.min() < 3:
            raise UserError(
                f"data.n_samples={self.n_samples} gives the rarest class {sizes.min()} samples with "
                f"imbalance_ratio={self.imbalance_ratio}; it needs at least 3 (one per split): "
                "raise data.n_samples or lower data.imbalance_ratio"
            )
        return sizes

    def load_splits(self) -> Splits:
        if self.n_features < 2:
            raise UserError(f"data.n_features={self.n_features} must be at least 2")
        sizes = self.class_sizes()
        informative = self.n_informative or max(2, min(self.n_features, self.n_features // 2 + 1))
        if not 2 <= informative <= self.n_features:
            raise UserError(
                f"data.n_informative={informative} must be between 2 and data.n_features={self.n_features}"
            )
        x, y = make_classification(
            n_samples=int(sizes.sum()) * 2,  # oversample, then take exact per-class sizes
            n_features=self.n_features,
            n_informative=informative,
            n_redundant=0,
            n_classes=self.num_classes_requested,
            n_clusters_per_class=1,
            weights=(sizes / sizes.sum()).tolist(),
            class_sep=self.class_sep,
            flip_y=0.0,
            random_state=self.seed,
        )
        keep = np.concatenate([np.flatnonzero(y == c)[:size] for c, size in enumerate(sizes)])
        x, y = x[keep].astype(np.float32), y[keep].astype(np.int64)
        parts = stratified_split(x, y, self.val_fraction, self.test_fraction, self.seed, self.min_train_rows)
        names = [f"class_{i}" for i in range(self.num_classes_requested)]
        return Splits(*parts, class_names=names, feature_names=[f"x{i}" for i in range(self.n_features)])
