"""`predict.py data.path=...` for image checkpoints: a folder of images, or a file listing their paths."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from imbalanced.data.images.files import ImageFiles, unreadable_images
from imbalanced.data.images.sources import image_paths
from imbalanced.data.predict_inputs import PredictInputs
from imbalanced.errors import UserError

log = logging.getLogger(__name__)


def checked_readable(paths: list[str], skip: bool, source: str) -> list[str]:
    """`paths` without unreadable files (skip=True, with a warning counting them), else UserError."""
    bad = unreadable_images(paths)
    if not bad:
        return paths
    shown = "; ".join(f"{path} ({reason})" for path, reason in list(bad.items())[:3])
    if not skip:
        raise UserError(f"{source}: {len(bad)} file(s) are not readable images: {shown}"
                        f"{' ...' if len(bad) > 3 else ''}; fix or remove them, or skip them with "
                        "data.skip_unreadable=true")
    log.warning("%s: skipped %d unreadable image(s) (data.skip_unreadable=true): %s", source, len(bad), shown)
    return [p for p in paths if p not in bad]


def image_predict_inputs(path: str, config: Mapping[str, Any], inputs: Mapping[str, Any]) -> PredictInputs:
    spec = inputs.get("images") or {}
    size = spec["image_size"]
    paths = image_paths("data.path", path)
    paths = checked_readable(paths, bool(config.get("skip_unreadable")), f"data.path={path}")
    if not paths:
        raise UserError(f"data.path={path}: no readable image left to predict")
    dataset = ImageFiles(paths, [0] * len(paths), int(spec["channels"]), (int(size[0]), int(size[1])))
    return PredictInputs(dataset, {"path": paths})
