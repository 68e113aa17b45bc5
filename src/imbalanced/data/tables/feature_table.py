"""In-memory feature tables (`data=synthetic`, `digits`, `tabular`): a float matrix per split.

On top of `InMemoryDataModule` this layer fits the standardization of every feature column on the
training split and tells the model what a table needs: `in_features` for the backbone, a
`Standardize` input transform with the fitted mean and scale (the model takes raw features, and its
checkpoint carries the scaling), and the column encoding that `read_inputs` (eval.py
`data.test_path`, predict.py `data.path`) uses to read new files.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from imbalanced.data.contract import RawInputs
from imbalanced.data.in_memory import InMemoryDataModule
from imbalanced.data.in_memory_batches import TensorBatchDataset
from imbalanced.data.tables.encoding import FeatureEncoding
from imbalanced.data.tables.standardize import fit_standardization
from imbalanced.data.tables.table_files import encode_labels, read_table, require_target
from imbalanced.errors import UserError


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
        return {
            "_target_": "imbalanced.data.tables.standardize.Standardize",
            "num_features": self.num_features,
        }

    def input_transform_state(self) -> dict[str, torch.Tensor]:
        self._require_splits()
        return {
            "mean": torch.as_tensor(self.feature_mean, dtype=torch.float32),
            "scale": torch.as_tensor(self.feature_scale, dtype=torch.float32),
        }

    def input_spec(self) -> dict[str, Any]:
        return {"encoding": self.column_encoding().to_dict()}

    @classmethod
    def read_inputs(
        cls,
        path: str,
        *,
        setting: str,
        config: Mapping[str, Any],
        spec: Mapping[str, Any],
        class_names: list[str],
        labelled: bool,
    ) -> RawInputs:
        """A table file (CSV, Parquet, ...) with the training feature columns, encoded as in
        training; the label column (`data.target`) is read when `labelled`, otherwise ignored, as
        are `data.drop_columns` and the id column(s) `data.id`.

        Carried into predictions.csv, before `prediction`: the id column(s) `data.id` (saved with
        a tabular run, or `+data.id=COLUMN` on predict.py), and with `+data.keep_columns=true`
        every column of the file (a list keeps those named); none by default, so a wide table does
        not make a wide output (its rows are in the input's order)."""
        if not spec.get("encoding"):
            raise UserError(
                f"{setting}={path}: this checkpoint holds no column encoding, so it cannot "
                "read a table (it predates eval.py data.test_path and predict.py)"
            )
        frame = read_table(path, setting)
        encoding = FeatureEncoding.from_dict(spec["encoding"])
        target = config.get("target")
        ids = column_names(config.get("id"))
        carried = carried_columns(frame, ids, config.get("keep_columns"), setting, path)
        # carried columns are known to the user, not extra features; one that is a feature stays one
        ignored = [
            str(c)
            for c in ([target] if target else []) + list(config.get("drop_columns") or []) + carried
            if str(c) not in encoding.columns
        ]
        features = encoding.transform(frame, f"{setting}={path}", ignored=ignored)
        labels = None
        if labelled:
            column = require_target(frame, target, setting, path)
            labels = encode_labels(column, class_names, setting, path)
        label_tensor = torch.as_tensor(labels if labels is not None else np.zeros(len(frame), np.int64))
        dataset = TensorBatchDataset(torch.as_tensor(features, dtype=torch.float32), label_tensor.long())
        return RawInputs(dataset, labels=labels, columns={c: frame[c].tolist() for c in carried})


def column_names(value: Any) -> list[str]:
    """`data.id` / `data.keep_columns` as a list of names (null: none; one name or a list)."""
    if value is None or value is False:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def carried_columns(frame: Any, ids: list[str], keep: Any, setting: str, path: str) -> list[str]:
    """The input columns predictions.csv carries: the ids, then `keep` (true: all columns)."""
    if keep is not None and not isinstance(keep, (bool, str, list, tuple)):
        keep = list(keep)  # an OmegaConf list
    kept = [str(c) for c in frame.columns] if keep is True else column_names(keep)
    wanted = list(dict.fromkeys(ids + kept))
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise UserError(
            f"{setting}={path} has no column(s) {missing} (named by data.id / "
            f"data.keep_columns); its columns: {[str(c) for c in frame.columns]}"
        )
    return wanted
