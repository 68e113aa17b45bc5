"""In-memory feature tables (`data=synthetic`, `digits`, `tabular`): a float matrix per split.

On top of `InMemoryDataModule` this layer fits the standardization of every feature column on the
training split and tells the model what a table needs: `in_features` for the backbone, a
`Standardize` input transform with the fitted mean and scale (the model takes raw features, and its
checkpoint carries the scaling), and the column encoding `predict.py` uses to read new files.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from imbalanced.data.base import InMemoryDataModule
from imbalanced.data.encoding import FeatureEncoding
from imbalanced.data.standardize import fit_standardization


class FeatureTableDataModule(InMemoryDataModule):
    """A datamodule whose `load_splits()` returns float32 feature matrices (rows x features)."""

    feature_mean: np.ndarray | None = None
    feature_scale: np.ndarray | None = None
    # refit_with_validation=auto refits tables up to this many training rows: measured to help on
    # 275-3,900 rows (benchmarks/quality.py); on larger tables 15% held out costs little and the
    # second training costs more (data=synthetic, 14,000 rows, stays one training)
    refit_max_rows = 10_000

    def setup(self, stage: str | None = None) -> None:
        super().setup(stage)
        if self.feature_mean is None:  # fitted once, on the training split only
            self.feature_mean, self.feature_scale = fit_standardization(self._require_splits().x_train)

    def merge_validation_into_training(self) -> None:
        super().merge_validation_into_training()
        # the refit model scales by the rows it trains on, as the first one did
        self.feature_mean, self.feature_scale = fit_standardization(self._require_splits().x_train)

    @property
    def refit_by_default(self) -> bool:
        return len(self._require_splits().y_train) <= self.refit_max_rows

    @property
    def num_features(self) -> int:
        return int(self._require_splits().x_train.shape[1])

    @property
    def feature_names(self) -> list[str]:
        splits = self._require_splits()
        return list(splits.feature_names) or [f"x{i}" for i in range(self.num_features)]

    def column_encoding(self) -> FeatureEncoding:
        """How a raw table's columns become the feature matrix; numeric columns unless overridden."""
        return FeatureEncoding.numeric_only(self.feature_names)

    # ---- the data-to-model contract -------------------------------------------------------
    def backbone_inputs(self) -> dict[str, Any]:
        return {"in_features": self.num_features}

    def input_transform(self) -> dict[str, Any]:
        return {"_target_": "imbalanced.data.standardize.Standardize", "num_features": self.num_features}

    def input_transform_state(self) -> dict[str, torch.Tensor]:
        self._require_splits()
        return {
            "mean": torch.as_tensor(self.feature_mean, dtype=torch.float32),
            "scale": torch.as_tensor(self.feature_scale, dtype=torch.float32),
        }

    def input_spec(self) -> dict[str, Any]:
        return {"encoding": self.column_encoding().to_dict()}
