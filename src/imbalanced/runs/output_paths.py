"""Checks of an output file before any work is done: it must not replace an input, and be writable."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from imbalanced.errors import UserError


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def check_output_file(setting: str, value: str | Path, inputs: Iterable[tuple[str, object]]) -> Path:
    """UserError if `value` is one of the `inputs` ((setting, path) pairs), a directory, or cannot be
    written (its folder cannot be created, or holds no writable place); the path otherwise."""
    output = Path(str(value)).expanduser()
    for name, path in inputs:
        if (
            path is not None
            and str(path)
            and (
                output.resolve() == Path(str(path)).expanduser().resolve()
                or _same_file(output, Path(str(path)).expanduser())
            )
        ):
            raise UserError(
                f"{setting}={value} is the input file {name}={path}; writing it would destroy the "
                f"input. allowed: another file, e.g. {setting}={output.with_name(output.stem + '_pred.csv')}"
            )
    for name, path in inputs:
        folder = Path(str(path)).expanduser() if path is not None and str(path) else None
        if folder is not None and folder.is_dir() and output.resolve().is_relative_to(folder.resolve()):
            raise UserError(
                f"{setting}={value} is inside the input folder {name}={path}; it could replace one of "
                f"its files and would be read as an input next time. allowed: a file outside {path}"
            )
    if output.is_dir():
        raise UserError(
            f"{setting}={value} is a directory; allowed: a file path such as {output / 'predictions.csv'}"
        )
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=output.parent):
            pass
    except OSError as error:
        raise UserError(
            f"{setting}={value} cannot be written ({error.strerror or error}); allowed: a file in a "
            "writable folder"
        ) from None
    if output.exists() and not os.access(output, os.W_OK):
        raise UserError(f"{setting}={value} exists and is read-only; allowed: a writable file")
    return output


def check_not_among(setting: str, value: str | Path, paths: Iterable[str], source: str) -> None:
    """UserError if the output file `value` is one of the input files `paths` (listed by `source`)."""
    output = os.path.realpath(Path(str(value)).expanduser())
    if any(os.path.realpath(p) == output for p in paths):
        raise UserError(
            f"{setting}={value} is one of the input files listed by {source}; writing it would "
            "destroy that input. allowed: another file"
        )
