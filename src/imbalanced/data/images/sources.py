"""Where a user's images are listed: a folder of class folders or a CSV of `path,label`.

- A folder follows torchvision's `ImageFolder`: `DIR/<class>/<image>`, class names are the folder
  names, sorted; images are found at any depth below a class folder (links followed), by extension
  (png, jpg, jpeg, bmp, ppm, pgm, tif, tiff, webp; any case). Hidden files and folders (`.name`,
  e.g. `.ipynb_checkpoints`) are ignored; other files are ignored with a warning that counts them.
- A CSV file (`.csv`) has a header with the columns `path` and `label`; relative paths are relative
  to the CSV file's folder.

Nothing here decodes an image: the labels come from the folder names or the CSV alone.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from imbalanced.data.images.files import IMAGE_EXTENSIONS, is_image_file
from imbalanced.errors import UserError

log = logging.getLogger(__name__)
KINDS = ", ".join(e.lstrip(".") for e in IMAGE_EXTENSIONS)


@dataclass
class LabelledFiles:
    """Image paths and the class name of each; `source` names the setting, e.g. `data.root=DIR`."""

    paths: list[str]
    labels: list[str]
    source: str


def _existing(setting: str, value: str) -> Path:
    if value is None or str(value) in ("", "???"):
        raise UserError(f"{setting} is not set; give a folder DIR/<class>/<image> or a CSV of path,label")
    path = Path(str(value)).expanduser()
    if not path.exists():
        raise UserError(f"{setting}={value}: no such folder or file (resolved to {path.resolve()})")
    return path


def labelled_files(setting: str, value: str) -> LabelledFiles:
    path = _existing(setting, value)
    if path.is_dir():
        return _class_folders(setting, value, path)
    if path.suffix.lower() == ".csv":
        return _csv(setting, value, path)
    raise UserError(f"{setting}={value} is invalid; allowed: a folder DIR/<class>/<image> or a .csv file "
                    "with the columns path,label")


def _walk_images(folder: Path) -> tuple[list[str], list[str]]:
    """(image paths, other non-hidden files) below `folder`, sorted, hidden folders skipped."""
    images, others = [], []
    for current, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            file = Path(current) / name
            if is_image_file(file):
                images.append(str(file))
            elif not name.startswith("."):
                others.append(str(file))
    return images, others


def _class_folders(setting: str, value: str, root: Path) -> LabelledFiles:
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    if not classes:
        files = [e.name for e in os.scandir(root) if e.is_file() and not e.name.startswith(".")]
        raise UserError(
            f"{setting}={value} has no class folders; expected {value}/<class>/<image> ({KINDS}), one "
            f"folder per class (it holds {len(files)} file(s) and no folder)"
        )
    paths: list[str] = []
    labels: list[str] = []
    empty: dict[str, int] = {}
    ignored: list[str] = []
    for name in classes:
        images, others = _walk_images(root / name)
        ignored += others
        if not images:
            empty[name] = len(others)
        paths += images
        labels += [name] * len(images)
    if empty:
        described = ", ".join(f"{name!r} ({n} other file(s))" if n else repr(name)
                              for name, n in empty.items())
        raise UserError(
            f"{setting}={value}: class folder(s) {described} hold no images ({KINDS}); add images or "
            "remove the folder(s)"
        )
    if ignored:
        log.warning("%s: ignored %d file(s) that are not images by extension (%s), e.g. %s", setting,
                    len(ignored), KINDS, ", ".join(ignored[:3]))
    return LabelledFiles(paths, labels, f"{setting}={value}")


def _csv(setting: str, value: str, file: Path) -> LabelledFiles:
    import pandas as pd

    try:
        frame = pd.read_csv(file, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as error:
        raise UserError(f"{setting}={value}: cannot be read as a CSV file: {error}") from None
    missing_columns = [c for c in ("path", "label") if c not in frame.columns]
    if missing_columns:
        raise UserError(f"{setting}={value}: needs the columns path,label; it lacks {missing_columns} "
                        f"(columns: {list(frame.columns)[:10]})")
    if frame.empty:
        raise UserError(f"{setting}={value}: the file has no rows")
    blank = [i for i, (p, label) in enumerate(zip(frame["path"], frame["label"], strict=True))
             if not p.strip() or not label.strip()]
    if blank:
        raise UserError(f"{setting}={value}: {len(blank)} row(s) with an empty path or label "
                        f"(data rows {blank[:5]})")
    paths = [str(p) if Path(p).is_absolute() else str(file.parent / p)
             for p in (os.path.expanduser(p.strip()) for p in frame["path"])]
    absent = [p for p in paths if not Path(p).is_file()]
    if absent:
        raise UserError(f"{setting}={value}: {len(absent)} listed file(s) do not exist, e.g. {absent[:3]}")
    return LabelledFiles(paths, [label.strip() for label in frame["label"]], f"{setting}={value}")


def image_paths(setting: str, value: str) -> list[str]:
    """Images to predict: every image below a folder (sorted), or the paths listed in a file (a CSV
    with a `path` column, or a text file with one path per line; relative to the file's folder)."""
    path = _existing(setting, value)
    if path.is_dir():
        images, _ = _walk_images(path)
        if not images:
            raise UserError(f"{setting}={value}: the folder holds no images ({KINDS})")
        return images
    if is_image_file(path):
        return [str(path)]
    lines = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()]
    lines = [line for line in lines if line]
    if path.suffix.lower() == ".csv":
        import pandas as pd

        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        if "path" not in frame.columns:
            raise UserError(f"{setting}={value}: a CSV of images needs a `path` column "
                            f"(columns: {list(frame.columns)[:10]})")
        lines = [p.strip() for p in frame["path"] if p.strip()]
    if not lines:
        raise UserError(f"{setting}={value}: the file lists no image paths")
    paths = [p if Path(p).is_absolute() else str(path.parent / p) for p in map(os.path.expanduser, lines)]
    absent = [p for p in paths if not Path(p).is_file()]
    if absent:
        raise UserError(f"{setting}={value}: {len(absent)} listed file(s) do not exist, e.g. {absent[:3]}")
    return paths
