"""Image files for eval.py (`data.test_path`) and predict.py (`data.path`) of an image checkpoint.

Labelled (eval): a folder `DIR/<class>/<image>` or a CSV of `path,label`. Unlabelled (predict): a
folder (every image below it), one image, or a file listing image paths. Images are read with the
checkpoint's channels and size (its input spec) and served as uint8, as in training.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

from imbalanced.data.contract import RawInputs
from imbalanced.data.images.files import ImageFiles, unreadable_images
from imbalanced.data.images.sources import image_paths, labelled_files
from imbalanced.errors import UserError

log = logging.getLogger(__name__)


def checked_readable(paths: list[str], skip: bool, source: str) -> list[str]:
    """`paths` without unreadable files (skip=True, with a warning counting them), else UserError."""
    bad = unreadable_images(paths)
    if not bad:
        return paths
    shown = "; ".join(f"{path} ({reason})" for path, reason in list(bad.items())[:3])
    if not skip:
        raise UserError(
            f"{source}: {len(bad)} file(s) are not readable images: {shown}"
            f"{' ...' if len(bad) > 3 else ''}; fix or remove them, or skip them with "
            "data.skip_unreadable=true"
        )
    log.warning("%s: skipped %d unreadable image(s) (data.skip_unreadable=true): %s", source, len(bad), shown)
    return [p for p in paths if p not in bad]


def read_image_inputs(
    path: str,
    *,
    setting: str,
    config: Mapping[str, Any],
    spec: Mapping[str, Any],
    class_names: list[str],
    labelled: bool,
) -> RawInputs:
    images = spec.get("images") or {}
    if not images:
        raise UserError(
            f"{setting}={path}: this checkpoint holds no image size and channels, so it "
            "cannot read image files"
        )
    source = f"{setting}={path}"
    if labelled:
        files = labelled_files(setting, path)
        names = dict(zip(files.paths, files.labels, strict=True))
        index = {name: i for i, name in enumerate(class_names)}
        unknown = sorted(set(files.labels) - set(index))
        if unknown:
            raise UserError(
                f"{source} has class(es) {unknown} that the model does not know; its "
                f"classes are {list(class_names)}"
            )
        paths = checked_readable(files.paths, bool(config.get("skip_unreadable")), source)
        labels = np.array([index[names[p]] for p in paths], dtype=np.int64)
    else:
        paths = checked_readable(image_paths(setting, path), bool(config.get("skip_unreadable")), source)
        labels = None
    if not paths:
        raise UserError(f"{source}: no readable image left")
    size = images["image_size"]
    dataset = ImageFiles(
        paths,
        labels if labels is not None else [0] * len(paths),
        int(images["channels"]),
        (int(size[0]), int(size[1])),
    )
    return RawInputs(dataset, labels=labels, columns={"path": paths}, files=list(paths))
