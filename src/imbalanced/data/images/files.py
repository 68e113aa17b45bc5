"""Image files: decoding to uint8 tensors, a lazy per-file Dataset and a cheap readability check.

Decoding uses Pillow (a dependency of matplotlib, so always installed). Every image becomes
`(channels, H, W)` uint8 at `image_size`: grayscale, palette, RGBA (alpha dropped), CMYK and 16-bit
images are converted to `channels` (1: grayscale, 3: RGB; grayscale is repeated to RGB), and images
of another size are resized (bilinear, antialiased; the aspect ratio is not kept).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from imbalanced.errors import UserError

log = logging.getLogger(__name__)

# torchvision's ImageFolder extensions (torchvision.datasets.folder.IMG_EXTENSIONS), any case
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def read_image(path: str | Path, channels: int, size: tuple[int, int]) -> Tensor:
    """The image at `path` as a `(channels, H, W)` uint8 tensor of `size` (H, W)."""
    from PIL import Image

    with Image.open(path) as image:
        _refuse_bomb(image)  # before decoding: Pillow itself only warns below twice its limit
        image.load()
        if image.mode.startswith("I;16"):  # 16-bit grayscale: keep the top 8 bits
            image = Image.fromarray((np.asarray(image, dtype=np.uint16) >> 8).astype(np.uint8))
        if image.mode == "P" or image.mode == "PA":  # palette (with transparency): via RGBA
            image = image.convert("RGBA")
        image = image.convert("L" if channels == 1 else "RGB")
        height, width = size
        if image.size != (width, height):
            image = image.resize((width, height), Image.Resampling.BILINEAR)
        pixels = np.asarray(image, dtype=np.uint8)
    tensor = torch.from_numpy(pixels.copy())
    return tensor[None] if channels == 1 else tensor.permute(2, 0, 1).contiguous()


def _refuse_bomb(image: Any) -> None:
    """Raise Pillow's DecompressionBombError for an image above `Image.MAX_IMAGE_PIXELS`."""
    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS
    width, height = image.size
    if limit is not None and width * height > limit:
        raise Image.DecompressionBombError(f"{width}x{height} = {width * height} pixels")


@contextmanager
def decode_errors(path: str | Path) -> Iterator[None]:
    """A file that cannot be opened or decoded becomes one UserError naming it and the fix."""
    from PIL import Image

    try:
        yield
    except Image.DecompressionBombError as error:
        raise UserError(
            f"{path} is refused: above Pillow's decompression-bomb limit Image.MAX_IMAGE_PIXELS="
            f"{Image.MAX_IMAGE_PIXELS} ({error}), decoding it could exhaust memory; allowed: remove or "
            "shrink the file (data.verify_images=true names every such file before training)"
        ) from None
    except (OSError, ValueError, SyntaxError) as error:  # passed (or skipped) the header check
        raise UserError(
            f"{path} is not a readable image ({error}); allowed: remove or replace the file, or "
            "data.verify_images=true to check every file before training (data.skip_unreadable=true "
            "then skips the unreadable ones)"
        ) from None


def load_image(path: str | Path, channels: int, size: tuple[int, int]) -> Tensor:
    """`read_image`; a file that cannot be decoded is one UserError naming it and the fix."""
    with decode_errors(path):
        return read_image(path, channels, size)


def image_size_of(path: str | Path) -> tuple[int, int]:
    """(height, width) of an image file, from its header (no decoding)."""
    from PIL import Image

    with decode_errors(path), Image.open(path) as image:
        width, height = image.size
    return int(height), int(width)


class ImageFiles(Dataset):
    """`(uint8 image, label)` per file, decoded when asked for (in DataLoader workers). `targets`
    is the label array the template counts classes from, without decoding a single image."""

    def __init__(
        self, paths: Sequence[str], targets: Sequence[int] | np.ndarray, channels: int, size: tuple[int, int]
    ) -> None:
        self.paths = [str(p) for p in paths]
        self.targets = np.asarray(targets, dtype=np.int64)
        self.channels = int(channels)
        self.size = (int(size[0]), int(size[1]))

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return load_image(self.paths[index], self.channels, self.size), int(self.targets[index])


def _problem(path: str) -> str | None:
    from PIL import Image

    try:
        with Image.open(path) as image:
            _refuse_bomb(image)
            image.verify()
    except Exception as error:  # noqa: BLE001 - any failure means "not a readable image"
        return f"{type(error).__name__}: {str(error)[:120]}"
    return None


def unreadable_images(paths: Sequence[str], threads: int = 8) -> dict[str, str]:
    """{path: reason} for files Pillow cannot open and verify: `Image.open` reads the header
    (format, size, mode) and `verify()` checks the file's structure (for PNG every chunk's
    checksum, so a cut-off PNG fails) without decoding pixels. A file read once, in threads."""
    with ThreadPoolExecutor(max_workers=threads) as pool:
        problems = list(pool.map(_problem, paths, chunksize=64))
    return {path: reason for path, reason in zip(paths, problems, strict=True) if reason is not None}
