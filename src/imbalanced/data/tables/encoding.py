"""Raw table columns -> the model's float feature matrix, learned on the training split.

Numeric (and boolean) columns pass through as float32. Text (categorical) columns are one-hot
encoded with the categories seen in the training split (sorted); a category unseen in training
encodes as all zeros. The encoding is a plain dict (`to_dict`) saved in the checkpoint, so
`predict.py` and `eval.py` encode a new file exactly as training did. Standardization is not done
here: the model standardizes with its `Standardize` input transform (data/tables/standardize.py).

Missing (NaN/empty) and infinite values raise UserError naming the columns: impute them before
training, or drop the column with `data.drop_columns`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from imbalanced.errors import UserError


@dataclass
class FeatureEncoding:
    """Which columns feed the model and how; `feature_names` are the encoded column names."""

    numeric: list[str]
    categorical: dict[str, list[str]] = field(default_factory=dict)
    columns: list[str] = field(default_factory=list)  # input order of the raw feature columns

    # ---- fitting ------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        frame: pd.DataFrame,
        categorical: str = "onehot",
        max_categories: int = 100,
        source: str = "data.path",
    ) -> FeatureEncoding:
        """Learn the columns and the categories of each text column from `frame` (training split)."""
        if categorical not in ("onehot", "error"):
            raise UserError(f"data.categorical={categorical!r} is unknown; valid: onehot, error")
        if frame.shape[1] == 0:
            raise UserError(f"{source}: no feature columns left besides the target")
        numeric = [c for c in frame.columns if _is_numeric(frame[c])]
        text = [c for c in frame.columns if c not in numeric]
        if text and categorical == "error":
            raise UserError(
                f"{source}: text (categorical) column(s) {text} are not numeric. Encode them "
                "yourself, drop them with data.drop_columns=[...], or set data.categorical=onehot"
            )
        check_finite(frame, source)
        categories: dict[str, list[str]] = {}
        for column in text:
            values = sorted(set(frame[column].astype(str)))
            if len(values) > max_categories:
                raise UserError(
                    f"{source}: text column {column!r} has {len(values)} distinct values in the "
                    f"training split, more than data.max_categories={max_categories} for one-hot "
                    "encoding; drop it (data.drop_columns=[...]) if it is an id or free text, or "
                    "raise data.max_categories"
                )
            categories[column] = values
        return cls(numeric=numeric, categorical=categories, columns=list(frame.columns))

    # ---- serialization ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "columns": list(self.columns),
            "numeric": list(self.numeric),
            "categorical": {k: list(v) for k, v in self.categorical.items()},
        }

    @classmethod
    def from_dict(cls, content: Mapping[str, Any]) -> FeatureEncoding:
        return cls(
            numeric=[str(c) for c in content["numeric"]],
            categorical={str(k): [str(v) for v in vs] for k, vs in dict(content["categorical"]).items()},
            columns=[str(c) for c in content["columns"]],
        )

    @classmethod
    def numeric_only(cls, feature_names: Sequence[str]) -> FeatureEncoding:
        """For checkpoints of datasets without a saved encoding: columns named like the features."""
        return cls(numeric=list(feature_names), categorical={}, columns=list(feature_names))

    # ---- use ----------------------------------------------------------------------------
    @property
    def feature_names(self) -> list[str]:
        names: list[str] = []
        for column in self.columns:
            if column in self.categorical:
                names.extend(f"{column}={value}" for value in self.categorical[column])
            else:
                names.append(column)
        return names

    def check_columns(self, frame: pd.DataFrame, source: str, ignored: Sequence[str] = ()) -> None:
        """The file must hold exactly the training feature columns (plus `ignored` ones)."""
        present = [c for c in frame.columns if c not in set(ignored)]
        missing = [c for c in self.columns if c not in set(present)]
        extra = [c for c in present if c not in set(self.columns)]
        if missing or extra:
            problems = _join_problems(
                (missing, f"missing column(s) {missing}"), (extra, f"extra column(s) {extra}")
            )
            raise UserError(
                f"{source}: the columns do not match the features the model was trained on: "
                f"{problems}. Expected the feature columns {self.columns}"
                + (f" (columns {list(ignored)} are ignored)" if ignored else "")
            )

    def transform(self, frame: pd.DataFrame, source: str, ignored: Sequence[str] = ()) -> np.ndarray:
        """Float32 feature matrix of `frame`; UserError naming columns that are absent or invalid."""
        self.check_columns(frame, source, ignored)
        wrong = [c for c in self.numeric if not _is_numeric(frame[c])]
        if wrong:
            raise UserError(
                f"{source}: column(s) {wrong} were numeric in training but hold text here "
                f"(e.g. {frame[wrong[0]].astype(str).iloc[0]!r})"
            )
        check_finite(frame[self.columns], source)
        blocks: list[np.ndarray] = []
        for column in self.columns:
            if column in self.categorical:
                categories = self.categorical[column]
                codes = pd.Categorical(frame[column].astype(str), categories=categories).codes
                block = np.zeros((len(frame), len(categories)), dtype=np.float32)
                known = codes >= 0  # unseen categories (-1) stay all zeros
                block[np.flatnonzero(known), codes[known]] = 1.0
                blocks.append(block)
            else:
                block = frame[column].to_numpy(dtype=np.float32).reshape(-1, 1)
                _check_float32(block, column, source)
                blocks.append(block)
        return np.concatenate(blocks, axis=1) if blocks else np.zeros((len(frame), 0), np.float32)


def _check_float32(block: np.ndarray, column: str, source: str | Path) -> None:
    """The finite check runs in float64 before the cast; 1e39 becomes inf in float32: check again."""
    overflow = ~np.isfinite(block)
    if overflow.any():
        rows = np.flatnonzero(overflow.ravel())
        raise UserError(
            f"{source}: column {column!r} has {rows.size} value(s) too large for float32 (|x| > 3.4e38; "
            f"data rows {', '.join(map(str, rows[:5]))}{', ...' if rows.size > 5 else ''}); rescale "
            "the column (e.g. log or divide by a constant) or drop it with data.drop_columns=[...]"
        )


def _join_problems(*problems: tuple[object, str]) -> str:
    """The texts of the problems that were found (`found` non-empty), joined with '; '."""
    return "; ".join(text for found, text in problems if found)


def _is_numeric(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)


def check_finite(frame: pd.DataFrame, source: str | Path) -> None:
    """UserError naming every column with missing (NaN/empty) or infinite values."""
    missing = {c: int(n) for c, n in frame.isna().sum().items() if n}
    infinite = {}
    for column in frame.columns:
        if pd.api.types.is_numeric_dtype(frame[column]) and not pd.api.types.is_bool_dtype(frame[column]):
            count = int(np.isinf(frame[column].to_numpy(dtype=np.float64, na_value=np.nan)).sum())
            if count:
                infinite[column] = count
    if missing or infinite:
        problems = _join_problems(
            (missing, f"missing (NaN/empty) values in column(s) {missing} (column: count)"),
            (infinite, f"infinite values in column(s) {infinite}"),
        )
        raise UserError(
            f"{source}: {problems}. Impute or drop those rows before training, or drop the "
            "column(s) with data.drop_columns=[...]"
        )
