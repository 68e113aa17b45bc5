"""`data=tabular`: a user's CSV or Parquet table with a label column.

- Labels (`data.target`) may be strings or integers. Class names are the distinct training labels,
  sorted (numbers numerically), as strings; they travel with the checkpoint.
- Every other column is a feature, except those in `data.drop_columns` and the id column(s)
  `data.id` (saved with the checkpoint: predict.py writes them first in predictions.csv). Numeric and boolean
  columns are used as they are; text columns are one-hot encoded with the categories of the
  training split (`data.categorical=onehot`, the default; a category unseen in training encodes as
  all zeros) or rejected (`data.categorical=error`). The model standardizes the encoded features
  with statistics of the training split (its `Standardize` input transform, data/tables/feature_table.py).
- Missing or infinite feature values are an error naming the columns (no silent imputation).
- `data.val_path` / `data.test_path` give fixed splits; the parts not given are split off
  `data.path`, stratified by label and seeded (`data.val_fraction`, `data.test_fraction` are
  fractions of `data.path`). A class needs at least one row per split cut from `data.path`
  (3 rows with both splits automatic, 2 with one, 1 with none), otherwise the run stops naming
  the class and its count. Labels in a fixed val/test file that the training split lacks are an
  error naming them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from omegaconf import OmegaConf

from imbalanced.data.in_memory import Splits
from imbalanced.data.splitting import (
    check_fraction,
    check_fractions,
    check_min_train_rows,
    split_file_rows,
)
from imbalanced.data.tables.encoding import FeatureEncoding, check_finite
from imbalanced.data.tables.feature_table import FeatureTableDataModule
from imbalanced.data.tables.table_files import class_names_of, encode_labels, read_table, require_target
from imbalanced.errors import UserError
from imbalanced.value_checks import check_choice, check_file, check_int


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if OmegaConf.is_list(value):
        value = OmegaConf.to_container(value)
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


class TabularDataModule(FeatureTableDataModule):
    def __init__(
        self,
        path: str | None = None,
        target: str | None = None,
        val_path: str | None = None,
        test_path: str | None = None,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        min_train_rows: int = 20,
        drop_columns: Sequence[str] | None = None,
        id: str | Sequence[str] | None = None,  # the config key users write: data.id=COL
        categorical: str = "onehot",
        max_categories: int = 100,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        for key, value in (("path", path), ("val_path", val_path), ("test_path", test_path)):
            if value:  # null: data.path is required at load time; the others are optional
                check_file(f"data.{key}", value)
        check_choice("data.categorical", categorical, ("onehot", "error"))
        check_int("data.max_categories", max_categories, minimum=1)
        self.path = path
        self.target = None if target is None else str(target)
        self.val_path = val_path or None  # "" means no fixed file, like null
        self.test_path = test_path or None
        self.val_fraction = float(val_fraction)
        self.test_fraction = float(test_fraction)
        self.min_train_rows = check_min_train_rows(min_train_rows)
        self.drop_columns = _as_list(drop_columns)
        self.id_columns = _as_list(id)
        self.categorical = categorical
        self.max_categories = int(max_categories)
        self.encoding: FeatureEncoding | None = None
        automatic = [
            (k, getattr(self, f"{k}_fraction")) for k in ("val", "test") if not getattr(self, f"{k}_path")
        ]
        if len(automatic) == 2:
            check_fractions(self.val_fraction, self.test_fraction)
        for name, fraction in automatic:
            check_fraction(f"data.{name}_fraction", fraction)

    @property
    def feature_encoding(self) -> dict[str, Any] | None:
        return None if self.encoding is None else self.encoding.to_dict()

    def column_encoding(self) -> FeatureEncoding:
        """The encoding fitted on the training split; saved in the checkpoint (`input_spec()`) so
        eval.py and predict.py encode new files identically."""
        if self.encoding is None:
            raise RuntimeError("call datamodule.setup() first")
        return self.encoding

    # ---- loading ------------------------------------------------------------------------
    def load_splits(self) -> Splits:
        source = f"data.path={self.path}"
        frame = read_table(self.path, "data.path")
        labels = require_target(frame, self.target, "data.path", self.path)
        for key, names in (("drop_columns", self.drop_columns), ("id", self.id_columns)):
            unknown = [c for c in names if c not in frame.columns]
            if unknown:
                raise UserError(f"data.{key} names column(s) {unknown} that {source} lacks")
        ignored = [self.target, *self.drop_columns, *self.id_columns]
        features = frame.drop(columns=[c for c in dict.fromkeys(ignored) if c in frame.columns])
        check_finite(features, source)

        class_names = class_names_of(labels, f"{source} (column {self.target!r})")
        if len(class_names) < 2:
            raise UserError(
                f"{source}: the label column {self.target!r} has only one class {class_names}; "
                "a classifier needs at least 2 classes"
            )
        y = encode_labels(labels, class_names, "data.path", self.path)
        train_idx, val_idx, test_idx = self._split(y, class_names)

        self.encoding = FeatureEncoding.fit(
            features.iloc[train_idx], self.categorical, self.max_categories, source
        )
        encode = self.encoding.transform
        x_train, y_train = encode(features.iloc[train_idx], source), y[train_idx]
        x_val, y_val = (
            self._fixed("val", class_names, ignored)
            if val_idx is None
            else (encode(features.iloc[val_idx], source), y[val_idx])
        )
        x_test, y_test = (
            self._fixed("test", class_names, ignored)
            if test_idx is None
            else (encode(features.iloc[test_idx], source), y[test_idx])
        )
        return Splits(
            x_train,
            y_train,
            x_val,
            y_val,
            x_test,
            y_test,
            class_names=class_names,
            feature_names=self.encoding.feature_names,
        )

    def _split(
        self, y: np.ndarray, class_names: list[str]
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Row indices (train, val, test) of data.path; None for a split given by a fixed file."""
        automatic = {
            name: fraction
            for name, fraction, path in (
                ("val", self.val_fraction, self.val_path),
                ("test", self.test_fraction, self.test_path),
            )
            if path is None
        }
        return split_file_rows(
            y, class_names, automatic, self.seed, self.min_train_rows, f"data.path={self.path}"
        )

    def _fixed(self, name: str, class_names: list[str], ignored: list[str]) -> tuple[np.ndarray, np.ndarray]:
        setting = f"data.{name}_path"
        path = getattr(self, f"{name}_path")
        frame = read_table(path, setting)
        labels = require_target(frame, self.target, setting, path)
        assert self.encoding is not None
        x = self.encoding.transform(frame, f"{setting}={path}", ignored=ignored)
        return x, encode_labels(labels, class_names, setting, path)
