"""Reading a user's labelled texts: a table (CSV, TSV, Parquet) or JSON Lines, or one text per line.

Every check names the file, the column and the row, so a bad file is one `error:` line before any
tokenizer is trained: bytes that are not UTF-8 (the line), a missing or non-text column, an empty
text. Rows are numbered as the tables' checks number them: data rows from 0, the header not counted.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from imbalanced.data.tables.table_files import CSV_SUFFIXES, PARQUET_SUFFIXES, read_table
from imbalanced.errors import UserError

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
LINE_SUFFIXES = (".txt",)  # one text per line: eval.py and predict.py only (no labels)
SHOWN_ROWS = 5


def read_text_table(path: str | Path, setting: str) -> pd.DataFrame:
    """The rows of a CSV/TSV/Parquet/JSON Lines file; UserError for what cannot be read."""
    if path is None or str(path) in ("", "???"):
        raise UserError(
            f"{setting} is not set; give the file: {setting}=FILE (.csv, .tsv, .parquet or .jsonl)"
        )
    file = Path(str(path)).expanduser()
    name = file.name.lower()
    if name.endswith(JSONL_SUFFIXES):
        return _read_json_lines(file, setting, path)
    if name.endswith((".csv", ".tsv")) and file.is_file():  # pandas would not name the line
        check_utf8(file, setting, path)
    if not name.endswith(CSV_SUFFIXES + PARQUET_SUFFIXES) and file.is_file():
        raise UserError(
            f"{setting}={path}: unknown file type; valid suffixes: "
            f"{', '.join(CSV_SUFFIXES + PARQUET_SUFFIXES + JSONL_SUFFIXES)}"
        )
    return read_table(file, setting)


def read_lines(path: str | Path, setting: str) -> list[str]:
    """A plain text file, one text per line (blank lines are refused: each line is one input)."""
    file = Path(str(path)).expanduser()
    if not file.is_file():
        raise UserError(f"{setting}={path}: file not found")
    text = check_utf8(file, setting, path)
    lines = text.splitlines()
    if not lines:
        raise UserError(f"{setting}={path}: the file is empty; give one text per line")
    blank = [number for number, line in enumerate(lines, start=1) if not line.strip()]
    if blank:
        raise UserError(
            f"{setting}={path}: line(s) {_some(blank)} are empty; each line is one text to classify, "
            "so remove the empty lines"
        )
    return lines


def check_utf8(file: Path, setting: str, path: str | Path) -> str:
    """The file's text; UserError naming the first line whose bytes are not UTF-8."""
    data = file.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise UserError(
            f"{setting}={path}: line {line} is not valid UTF-8 (byte 0x{data[error.start]:02x}); "
            "save the file as UTF-8"
        ) from None


def _read_json_lines(file: Path, setting: str, path: str | Path) -> pd.DataFrame:
    if not file.is_file():
        raise UserError(f"{setting}={path}: file not found")
    records = []
    for number, line in enumerate(check_utf8(file, setting, path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise UserError(f"{setting}={path}: line {number} is not JSON ({error.msg})") from None
        if not isinstance(record, dict):
            raise UserError(
                f"{setting}={path}: line {number} is a JSON {type(record).__name__}, not an object; "
                'each line needs one object such as {"text": "...", "label": "..."}'
            )
        records.append(record)
    if not records:
        raise UserError(f"{setting}={path}: the file has no JSON lines")
    return pd.DataFrame.from_records(records)


def text_column(frame: pd.DataFrame, column: str | None, setting: str, path: str | Path) -> list[str]:
    """The texts of `column` (`data.text`), checked: it exists, holds text, and no text is empty."""
    columns = [str(c) for c in frame.columns]
    if column is None or str(column) in ("", "???"):
        raise UserError(
            f"data.text is not set; name the text column of {path}: data.text=COLUMN (columns: {columns})"
        )
    if str(column) not in frame.columns:
        raise UserError(f"data.text={column}: no such column in {setting}={path}; columns: {columns}")
    values = frame[str(column)]
    missing = np.flatnonzero(values.isna().to_numpy())
    if missing.size:
        raise UserError(
            f"{setting}={path}: the text column {column!r} is empty in {missing.size} row(s) "
            f"(data rows {_some(missing)}); drop those rows or give them a text"
        )
    not_text = [i for i, value in enumerate(values.to_numpy()) if not isinstance(value, str)]
    if not_text:
        first = values.iloc[not_text[0]]
        raise UserError(
            f"data.text={column}: the column of {setting}={path} holds {type(first).__name__} values, "
            f"not text (data rows {_some(not_text)}, e.g. {first!r}); name the column that holds the texts"
        )
    texts = values.tolist()
    blank = [i for i, text in enumerate(texts) if not text.strip()]
    if blank:
        raise UserError(
            f"{setting}={path}: the text column {column!r} has {len(blank)} empty text(s) "
            f"(data rows {_some(blank)}); drop those rows or give them a text"
        )
    return texts


def _some(rows: list[int] | np.ndarray) -> str:
    shown = ", ".join(str(int(r)) for r in list(rows)[:SHOWN_ROWS])
    return shown + (", ..." if len(rows) > SHOWN_ROWS else "")
