"""Reading a user's table (CSV or Parquet) and turning its label column into class indices."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from imbalanced.data.label_names import LOOK_ALIKE_REASON, describe_groups, look_alike_groups
from imbalanced.errors import UserError

CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.zip", ".csv.bz2", ".csv.xz", ".tsv")
PARQUET_SUFFIXES = (".parquet", ".pq")


def _describe_columns(columns: Sequence[str], limit: int = 30) -> str:
    names = [str(c) for c in columns]
    shown = ", ".join(repr(c) for c in names[:limit])
    return shown + (f", ... ({len(names)} columns)" if len(names) > limit else "")


def read_table(path: str | Path, setting: str = "data.path") -> pd.DataFrame:
    """Read a CSV (by suffix: .csv, .tsv, compressed .csv.*) or Parquet (.parquet, .pq) file.

    A missing, unreadable or empty file raises UserError naming the setting and the file.
    """
    if path is None or str(path) in ("", "???"):
        raise UserError(f"{setting} is not set; give the file: {setting}=FILE (a .csv or .parquet table)")
    file = Path(str(path)).expanduser()
    name = file.name.lower()
    if not file.is_file():
        where = f" (resolved to {file.resolve()})" if not file.is_absolute() else ""
        raise UserError(f"{setting}={path}: file not found{where}")
    header: list[str] | None = None
    try:
        if name.endswith(PARQUET_SUFFIXES):
            frame = pd.read_parquet(file)
        elif name.endswith(CSV_SUFFIXES):
            sep = "\t" if name.endswith(".tsv") else ","
            frame = pd.read_csv(file, sep=sep)
            header = _csv_header(file, sep)
        else:
            raise UserError(
                f"{setting}={path}: unknown file type; valid suffixes: "
                f"{', '.join(CSV_SUFFIXES + PARQUET_SUFFIXES)}"
            )
    except ImportError as error:
        raise UserError(
            f"{setting}={path}: reading Parquet needs pyarrow: pip install 'imbalanced[parquet]' ({error})"
        ) from None
    except pd.errors.EmptyDataError:
        raise UserError(f"{setting}={path}: the file is empty (no header, no rows)") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as error:
        raise UserError(f"{setting}={path}: cannot be read as a table: {error}") from None
    if len(frame) == 0:
        raise UserError(
            f"{setting}={path}: the file has no data rows (columns: {_describe_columns(frame.columns)})"
        )
    frame.columns = [str(c) for c in frame.columns]
    # pandas renames a repeated CSV header (label, label.1), so check the header as written
    names = header if header is not None else list(frame.columns)
    duplicated = sorted({c for c in names if c != "" and names.count(c) > 1})
    if duplicated:
        raise UserError(
            f"{setting}={path}: duplicated column names {duplicated} in the header; every column needs "
            "a unique name (a repeated label column would become a feature)"
        )
    return frame


def _csv_header(file: Path, sep: str) -> list[str]:
    """The header row exactly as written (pandas's own reading renames duplicates)."""
    head = pd.read_csv(file, sep=sep, header=None, nrows=1, dtype=str, keep_default_na=False)
    return [str(v) for v in head.iloc[0].tolist()]


def require_target(frame: pd.DataFrame, target: str | None, setting: str, path: str | Path) -> pd.Series:
    """The label column, checked: it exists and has no empty values."""
    if target is None or str(target) in ("", "???"):
        raise UserError(
            f"data.target is not set; name the label column of {path}: data.target=COLUMN "
            f"(columns: {_describe_columns(frame.columns)})"
        )
    if str(target) not in frame.columns:
        raise UserError(
            f"data.target={target}: no such column in {setting}={path}; "
            f"columns: {_describe_columns(frame.columns)}"
        )
    labels = frame[str(target)]
    empty = np.flatnonzero(labels.isna().to_numpy())
    if empty.size:
        rows = ", ".join(str(i) for i in empty[:5])
        raise UserError(
            f"{setting}={path}: the label column {target!r} has {empty.size} empty value(s) "
            f"(data rows {rows}{', ...' if empty.size > 5 else ''}); drop or label those rows"
        )
    return labels


def class_names_of(labels: pd.Series, source: str = "the label column") -> list[str]:
    """Sorted distinct labels as strings: numbers sort as numbers (2 before 10), text as text.

    Labels that differ only by surrounding whitespace (`cat` and `cat `) or Unicode normalization
    (NFC and NFD `café`) are refused, naming them: they are almost always one class typed twice,
    and would silently become two (data/label_names.py)."""
    values = labels.unique()
    near = look_alike_groups(values)
    if near:
        raise UserError(
            f"{source}: labels {describe_groups(near)} {LOOK_ALIKE_REASON} and would become separate "
            "classes; write each class one way in the label column (or make the labels really different)"
        )
    try:
        ordered = sorted(values)
    except TypeError:  # mixed types: sort by their text
        ordered = sorted(values, key=str)
    names = [_label_text(v) for v in ordered]
    if len(set(names)) != len(names):
        raise UserError(f"labels {ordered} are not distinct once written as text")
    return names


def _label_text(value: object) -> str:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))  # 1.0 and 1 are the same class
    return str(value.item() if isinstance(value, np.generic) else value)


def encode_labels(
    labels: pd.Series, class_names: Sequence[str], setting: str, path: str | Path
) -> np.ndarray:
    """Class indices (int64) of `labels`; labels outside `class_names` raise UserError naming them."""
    index = {name: i for i, name in enumerate(class_names)}
    texts = [_label_text(v) for v in labels.to_numpy()]
    unknown = sorted({t for t in texts if t not in index})
    if unknown:
        raise UserError(
            f"{setting}={path} has label(s) {unknown} that the training split lacks; the model "
            f"knows only {list(class_names)}. Remove those rows or add examples of them to the "
            "training data"
        )
    return np.fromiter((index[t] for t in texts), dtype=np.int64, count=len(texts))
