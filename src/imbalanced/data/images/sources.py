"""Where a user's images are listed: a folder of class folders or a CSV of `path,label`.

- A folder follows torchvision's `ImageFolder`: `DIR/<class>/<image>`, class names are the folder
  names, sorted; images are found at any depth below a class folder, by extension (png, jpg, jpeg,
  bmp, ppm, pgm, tif, tiff, webp; any case). Hidden files and folders (`.name`, e.g.
  `.ipynb_checkpoints`) are ignored; other files, and files directly in DIR, are ignored with a
  warning that counts them.
- Every real file is listed once, under the class folder it really is in: a link below a class
  folder is followed only to a place inside that class folder not listed yet, so a link loop
  (`cat/self -> .`), a link to another class (`dog/up -> ..`) or out of DIR is skipped (with a
  warning that counts them), never walked. A class folder that is a link out of DIR, or to another
  class folder, is refused. Class names that differ only by surrounding whitespace or Unicode
  normalization (`cat` / `cat `, NFC / NFD `café`) are refused (data/label_names.py).
- A CSV file (`.csv`) has a header with the columns `path` and `label`; relative paths are relative
  to the CSV file's folder.

Nothing here decodes an image: the labels come from the folder names or the CSV alone.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from imbalanced.data.images.files import IMAGE_EXTENSIONS, is_image_file
from imbalanced.data.label_names import LOOK_ALIKE_REASON, describe_groups, look_alike_groups
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
    raise UserError(
        f"{setting}={value} is invalid; allowed: a folder DIR/<class>/<image> or a .csv file "
        "with the columns path,label"
    )


@dataclass
class _Listing:
    """What a walk found: images, other (non-hidden) files, and links it did not follow."""

    images: list[str] = field(default_factory=list)
    others: list[str] = field(default_factory=list)
    skipped_links: list[str] = field(default_factory=list)


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _walk_images(folder: Path) -> _Listing:
    """Images and other files below `folder`, in os.walk's order (sorted, depth first, a folder's
    files before its subfolders'), hidden entries skipped. Each real file is listed once: links are
    followed only to places inside `folder` not listed yet (no loops, nothing from outside)."""
    top = os.path.realpath(folder)
    listing = _Listing()
    walked = {top}
    found: list[tuple[str, str, bool]] = []  # (path, real path, reached through a link)
    stack = [(str(folder), top, False)]
    while stack:
        current, real_current, via_link = stack.pop()
        try:
            entries = sorted(os.scandir(current), key=lambda entry: entry.name)
        except OSError:  # unreadable folder: os.walk skipped it the same way
            continue
        subfolders = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            link = entry.is_symlink()
            real = os.path.realpath(entry.path) if link else os.path.join(real_current, entry.name)
            try:
                is_folder = entry.is_dir()
            except OSError:
                is_folder = False
            if link and not _inside(real, top) or is_folder and real in walked:
                if link:  # (a real folder already walked through a link has its files listed)
                    listing.skipped_links.append(entry.path)
            elif is_folder:
                walked.add(real)
                subfolders.append((entry.path, real, via_link or link))
            elif is_image_file(Path(entry.name)):
                found.append((entry.path, real, via_link or link))
            else:
                listing.others.append(entry.path)
        stack.extend(reversed(subfolders))
    # a file reached twice (a link to an image beside it) is listed once, under its own name
    kept = {real: path for path, real, linked in reversed(found) if not linked}
    for path, real, _ in found:
        kept.setdefault(real, path)
    listed = set(kept.values())
    listing.images = [path for path, _, _ in found if path in listed]
    listing.skipped_links += [path for path, _, _ in found if path not in listed]
    return listing


def _warn_skipped(setting: str, listing: _Listing) -> None:
    if listing.others:
        log.warning(
            "%s: ignored %d file(s) that are not images by extension (%s), e.g. %s",
            setting,
            len(listing.others),
            KINDS,
            ", ".join(listing.others[:3]),
        )
    if listing.skipped_links:
        log.warning(
            "%s: did not follow %d link(s) that lead out of their folder, into a folder already "
            "listed or to an image already listed (each image counts once, under the class folder "
            "it is in), e.g. %s",
            setting,
            len(listing.skipped_links),
            ", ".join(listing.skipped_links[:3]),
        )


def _class_folders(setting: str, value: str, root: Path) -> LabelledFiles:
    entries = [e for e in os.scandir(root) if not e.name.startswith(".")]
    classes = sorted(e.name for e in entries if e.is_dir())
    loose = sorted(e.path for e in entries if not e.is_dir())
    if not classes:
        raise UserError(
            f"{setting}={value} has no class folders; expected {value}/<class>/<image> ({KINDS}), one "
            f"folder per class (it holds {len(loose)} file(s) and no folder)"
        )
    _check_class_names(setting, value, classes)
    _check_class_folders(setting, value, root, classes)
    paths: list[str] = []
    labels: list[str] = []
    empty: dict[str, int] = {}
    if loose:  # files directly in the root belong to no class
        log.warning(
            "%s: ignored %d file(s) directly in the folder, outside every class folder (images "
            "belong in %s/<class>/), e.g. %s",
            setting,
            len(loose),
            value,
            ", ".join(loose[:3]),
        )
    total = _Listing()
    for name in classes:
        listing = _walk_images(root / name)
        total.others += listing.others
        total.skipped_links += listing.skipped_links
        if not listing.images:
            empty[name] = len(listing.others)
        paths += listing.images
        labels += [name] * len(listing.images)
    if empty:
        described = ", ".join(
            f"{name!r} ({n} other file(s))" if n else repr(name) for name, n in empty.items()
        )
        raise UserError(
            f"{setting}={value}: class folder(s) {described} hold no images ({KINDS}); add images or "
            "remove the folder(s)"
        )
    _warn_skipped(setting, total)
    return LabelledFiles(paths, labels, f"{setting}={value}")


def _check_class_names(setting: str, value: str, names: list[str]) -> None:
    near = look_alike_groups(names)
    if near:
        raise UserError(
            f"{setting}={value}: class names {describe_groups(near)} {LOOK_ALIKE_REASON} and "
            "would become separate classes; merge or rename those folders"
        )


def _check_class_folders(setting: str, value: str, root: Path, classes: list[str]) -> None:
    """A class folder that is a link must stay inside the root and be no other class's folder."""
    top = os.path.realpath(root)
    real = {name: os.path.realpath(root / name) for name in classes}
    for name in classes:
        if not _inside(real[name], top) or real[name] == top:
            raise UserError(
                f"{setting}={value}: class folder {name!r} is a link to {real[name]}, outside "
                f"the folder; links are not followed out of {setting}: copy or move the images "
                "into it"
            )
        nested = [other for other in classes if other != name and _inside(real[name], real[other])]
        if nested:
            relation = "and {!r} are one folder" if real[name] == real[nested[0]] else "is inside {!r}"
            raise UserError(
                f"{setting}={value}: class folder {name!r} {relation.format(nested[0])} "
                f"({real[name]}, through a link); its images would count for both classes"
            )


def _csv(setting: str, value: str, file: Path) -> LabelledFiles:
    import pandas as pd

    try:
        frame = pd.read_csv(file, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as error:
        raise UserError(f"{setting}={value}: cannot be read as a CSV file: {error}") from None
    missing_columns = [c for c in ("path", "label") if c not in frame.columns]
    if missing_columns:
        raise UserError(
            f"{setting}={value}: needs the columns path,label; it lacks {missing_columns} "
            f"(columns: {list(frame.columns)[:10]})"
        )
    if frame.empty:
        raise UserError(f"{setting}={value}: the file has no rows")
    blank = [
        i
        for i, (p, label) in enumerate(zip(frame["path"], frame["label"], strict=True))
        if not p.strip() or not label.strip()
    ]
    if blank:
        raise UserError(
            f"{setting}={value}: {len(blank)} row(s) with an empty path or label (data rows {blank[:5]})"
        )
    paths = [
        str(p) if Path(p).is_absolute() else str(file.parent / p)
        for p in (os.path.expanduser(p.strip()) for p in frame["path"])
    ]
    absent = [p for p in paths if not Path(p).is_file()]
    if absent:
        raise UserError(f"{setting}={value}: {len(absent)} listed file(s) do not exist, e.g. {absent[:3]}")
    labels = [label.strip() for label in frame["label"]]
    near = look_alike_groups(set(labels))
    if near:
        raise UserError(
            f"{setting}={value}: labels {describe_groups(near)} {LOOK_ALIKE_REASON} and would "
            "become separate classes; write each class one way in the label column"
        )
    return LabelledFiles(paths, labels, f"{setting}={value}")


def image_paths(setting: str, value: str) -> list[str]:
    """Images to predict: every image below a folder (sorted), or the paths listed in a file (a CSV
    with a `path` column, or a text file with one path per line; relative to the file's folder)."""
    path = _existing(setting, value)
    if path.is_dir():
        listing = _walk_images(path)
        if not listing.images:
            raise UserError(f"{setting}={value}: the folder holds no images ({KINDS})")
        _warn_skipped(setting, listing)
        return listing.images
    if is_image_file(path):
        return [str(path)]
    lines = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()]
    lines = [line for line in lines if line]
    if path.suffix.lower() == ".csv":
        import pandas as pd

        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        if "path" not in frame.columns:
            raise UserError(
                f"{setting}={value}: a CSV of images needs a `path` column "
                f"(columns: {list(frame.columns)[:10]})"
            )
        lines = [p.strip() for p in frame["path"] if p.strip()]
    if not lines:
        raise UserError(f"{setting}={value}: the file lists no image paths")
    paths = [p if Path(p).is_absolute() else str(path.parent / p) for p in map(os.path.expanduser, lines)]
    absent = [p for p in paths if not Path(p).is_file()]
    if absent:
        raise UserError(f"{setting}={value}: {len(absent)} listed file(s) do not exist, e.g. {absent[:3]}")
    return paths
