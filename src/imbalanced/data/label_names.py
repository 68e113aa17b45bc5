"""Class names that only look different: surrounding whitespace and Unicode normalization.

`cat` and `cat `, or `café` typed as one code point (NFC) and as `e` + a combining accent (NFD, as
macOS file names often are), print the same and are almost always one class written twice; kept
apart they would silently become two classes. Tables, image folders and CSV lists refuse them alike.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable


def _key(name: str) -> str:
    return unicodedata.normalize("NFC", name).strip()


def look_alike_groups(values: Iterable[object]) -> list[list[str]]:
    """Groups of distinct text values equal once stripped and NFC-normalized, e.g. [['cat', 'cat ']]."""
    groups: dict[str, set[str]] = {}
    for value in values:
        if isinstance(value, str):
            groups.setdefault(_key(value), set()).add(value)
    return [sorted(group) for _, group in sorted(groups.items()) if len(group) > 1]


def describe_groups(groups: list[list[str]]) -> str:
    """The groups as text, non-ASCII characters escaped so that NFC and NFD forms read differently."""
    return "[" + ", ".join("[" + ", ".join(ascii(v) for v in group) + "]" for group in groups) + "]"


LOOK_ALIKE_REASON = (
    "differ only by surrounding whitespace or Unicode normalization (an accented letter "
    "written as one code point or as letter + combining accent)"
)
