"""What a plot file the template writes must be: a real PNG of plausible size, not blank."""

from __future__ import annotations

from pathlib import Path

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path, min_bytes: int = 10_000) -> tuple[int, int]:
    """A real PNG of plausible size that decodes to an RGB(A) image; returns (height, width)."""
    import matplotlib.image

    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path.name} is not a PNG"
    assert len(data) > min_bytes, f"{path.name} is only {len(data)} bytes"
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    assert image.std() > 0.01, f"{path.name} is a blank image"
    return image.shape[0], image.shape[1]
