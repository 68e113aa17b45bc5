"""A small file tree in torchvision's on-disk CIFAR format (pickles), written by the tests.

Every image is unique and carries its identity in its first pixels: bytes 0-3 hold the image's
index, byte 4 is 0 for training files and 1 for the test file, so tests can check that splits are
disjoint without comparing whole images.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np


def _images(count: int, first: int, test: bool, rng: np.random.Generator) -> np.ndarray:
    data = rng.integers(0, 256, size=(count, 3072), dtype=np.uint8)
    index = np.arange(first, first + count, dtype=np.uint32)
    data[:, :4] = index.view(np.uint8).reshape(count, 4)
    data[:, 4] = int(test)
    return data


def image_ids(images: np.ndarray) -> np.ndarray:
    """(index, test flag) of images read back as N x 3 x 32 x 32."""
    flat = np.ascontiguousarray(np.asarray(images).reshape(len(images), -1)[:, :5])
    return flat[:, :4].copy().view(np.uint32)[:, 0].astype(np.int64) * 2 + flat[:, 4]


def write_cifar_tree(
    root: Path, variant: str = "cifar10", train_per_class: int = 60, test_per_class: int = 5, seed: int = 0
) -> Path:
    """Write CIFAR-10 (5 training batches) or CIFAR-100 files with the given counts per class."""
    rng = np.random.default_rng(seed)
    classes = 10 if variant == "cifar10" else 100
    train_labels = rng.permutation(np.repeat(np.arange(classes), train_per_class))
    test_labels = rng.permutation(np.repeat(np.arange(classes), test_per_class))
    train_data = _images(len(train_labels), 0, False, rng)
    test_data = _images(len(test_labels), 0, True, rng)
    names = [f"class{c}" for c in range(classes)]

    def dump(path: Path, content: dict) -> None:
        with open(path, "wb") as handle:
            pickle.dump(content, handle)

    if variant == "cifar10":
        base = root / "cifar-10-batches-py"
        base.mkdir(parents=True, exist_ok=True)
        for i, (data, labels) in enumerate(
            zip(np.array_split(train_data, 5), np.array_split(train_labels, 5), strict=True), start=1
        ):
            dump(base / f"data_batch_{i}", {"data": data, "labels": labels.tolist()})
        dump(base / "test_batch", {"data": test_data, "labels": test_labels.tolist()})
        dump(base / "batches.meta", {"label_names": names})
    else:
        base = root / "cifar-100-python"
        base.mkdir(parents=True, exist_ok=True)
        dump(base / "train", {"data": train_data, "fine_labels": train_labels.tolist()})
        dump(base / "test", {"data": test_data, "fine_labels": test_labels.tolist()})
        dump(base / "meta", {"fine_label_names": names})
    return root
