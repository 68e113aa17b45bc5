"""Small image trees written with Pillow for the image tests (no download)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

MODES = ("RGB", "L", "RGBA")


def write_image(
    path: Path, shade: int, size: tuple[int, int] = (10, 12), mode: str = "RGB", seed: int = 0
) -> Path:
    rng = np.random.default_rng(seed)
    pixels = np.clip(rng.normal(shade, 25, (*size, 3)), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).convert(mode).save(path)
    return path


def image_tree(root: Path, counts: dict[str, int]) -> Path:
    """root/<class>/<i>.png (and .jpg for RGB/L), classes of distinct brightness, mixed sizes and modes."""
    for index, (name, count) in enumerate(counts.items()):
        shade = 30 + 180 * index // max(1, len(counts) - 1)
        for i in range(count):
            mode = MODES[i % 3]
            suffix = ".png" if mode == "RGBA" or i % 2 else ".jpg"
            write_image(root / name / f"{i}{suffix}", shade, (8 + i % 5, 12), mode, seed=i)
    return root
