"""CSV output that spreadsheet programs open as data, never as formulas.

A cell starting with `=`, `+`, `-`, `@` (or a tab / carriage return) is run as a formula by Excel,
LibreOffice and Google Sheets ("CSV injection"); class names come from the user's label column, so
they can. Such cells get a leading `'` (the spreadsheet convention for "text"), unless the cell is a
plain number such as `-1` (a negative integer label stays as it is). Quoting of commas, quotes and
line breaks is the `csv` module's.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path

from imbalanced.runs.atomic_writes import atomic_write

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def escape_formula(cell: object) -> str:
    """`cell` as text, with a leading `'` if a spreadsheet would read it as a formula."""
    text = str(cell)
    if text.startswith(FORMULA_STARTS) and not _is_number(text):
        return "'" + text
    return text


def write_csv(
    path: str | Path, header: Sequence[object], rows: Iterable[Sequence[object]], escape_formulas: bool = True
) -> Path:
    """Write a CSV atomically with the csv module's quoting; text cells escaped (see above)."""

    def cell(value: object) -> object:
        return escape_formula(value) if escape_formulas and isinstance(value, str) else value

    with atomic_write(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow([cell(v) for v in header])
        writer.writerows([cell(v) for v in row] for row in rows)
    return Path(path)
