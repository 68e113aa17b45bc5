"""`data=cifar10_lt` / `data=cifar100_lt`: long-tailed CIFAR from torchvision's on-disk format.

Files: `<root>/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}` or
`<root>/cifar-100-python/{train,test,meta}`, as torchvision's `CIFAR10`/`CIFAR100(download=True)`
write them (`data.download=true` fetches them with torchvision, on the user's machine). They are
Python pickles, read here with an unpickler that admits plain data and numpy arrays only
(cifar_pickle.py): a crafted file that asks for anything else is refused, never run.

Splits (all choices seeded by `data.seed`):
- train: n_i = int(n_max * ratio^(-i/(C-1))) images of class i (Cao et al. 2019; n_max 5000 for
  CIFAR-10, 500 for CIFAR-100), drawn at random among the class's 50,000 / C training images;
- val: `val_per_class` images per class from the training images the long-tailed split left
  unused (never the test set). The head class has none left at n_max = all its images, so it gives
  up `val_per_class` of them: n_0 = 5000 - val_per_class (every other class keeps the papers' n_i);
- test: the balanced 10,000-image test set.
Images stay uint8 (N x 3 x 32 x 32, ~38 MB for CIFAR-10-LT); the model normalizes them
(`ImageNormalize`, fitted on the training split) and augmentation runs per backend (`augment.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from imbalanced.data.images.augment import AugmentSettings, augment_batch, sample_transform
from imbalanced.data.images.cifar_pickle import load_batch
from imbalanced.data.images.mixing import mix_batch
from imbalanced.data.in_memory import InMemoryDataModule, Splits
from imbalanced.data.profiles import long_tail_counts
from imbalanced.errors import UserError
from imbalanced.value_checks import check_choice, check_int

# variant -> (folder, train files, test files, meta file, label key, names key, n_max)
LAYOUTS = {
    "cifar10": (
        "cifar-10-batches-py",
        [f"data_batch_{i}" for i in range(1, 6)],
        ["test_batch"],
        "batches.meta",
        "labels",
        "label_names",
        5000,
    ),
    "cifar100": ("cifar-100-python", ["train"], ["test"], "meta", "fine_labels", "fine_label_names", 500),
}
RATIOS = (10, 50, 100, 200)


CifarArrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]


def read_cifar(root: str | Path, variant: str) -> CifarArrays:
    """(train images, train labels, test images, test labels, class names); images N x 3 x 32 x 32 uint8."""
    folder, train_files, test_files, meta_file, label_key, names_key, _ = LAYOUTS[variant]
    base = Path(root) / folder
    missing = [name for name in [*train_files, *test_files, meta_file] if not (base / name).is_file()]
    if missing:
        raise UserError(
            f"data.root={str(root)!r}: {base} lacks {', '.join(missing)}; download CIFAR with "
            "data.download=true (once, on a machine with network) or point data.root at the "
            "folder that holds it"
        )

    def load(name: str) -> dict[str, Any]:
        content = load_batch(base / name)  # data only: a file asking for other objects is refused
        if not isinstance(content, dict):
            raise UserError(f"{base / name} is not a CIFAR batch file (it holds a {type(content).__name__})")
        return content

    def images_and_labels(names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        batches = [load(name) for name in names]
        images = np.concatenate([np.asarray(b["data"], dtype=np.uint8) for b in batches])
        labels = np.concatenate([np.asarray(b[label_key], dtype=np.int64) for b in batches])
        return images.reshape(-1, 3, 32, 32), labels

    x_train, y_train = images_and_labels(train_files)
    x_test, y_test = images_and_labels(test_files)
    names = [str(name) for name in load(meta_file)[names_key]]
    return x_train, y_train, x_test, y_test, names


class CifarLTDataModule(InMemoryDataModule):
    """Long-tailed CIFAR-10/100 (see the module docstring for the splits)."""

    def __init__(
        self,
        root: str,
        variant: str = "cifar10",
        download: bool = False,
        imbalance_ratio: int = 100,
        val_per_class: int = 20,
        n_max: int | None = None,
        augment: Mapping[str, Any] | None = None,
        channels_last: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.variant = check_choice("data.variant", variant, tuple(LAYOUTS))
        check_choice("data.imbalance_ratio", imbalance_ratio, RATIOS)
        self.root = str(root)
        self.download = bool(download)
        self.imbalance_ratio = int(imbalance_ratio)
        self.val_per_class = check_int("data.val_per_class", val_per_class, minimum=1)
        # n_max: the head class's size in the formula; null = the papers' 5000 / 500
        self.n_max = LAYOUTS[variant][-1] if n_max is None else check_int("data.n_max", n_max, minimum=1)
        self.augment = AugmentSettings.from_config(augment)
        self.augment.check_backend(self.backend)
        self.channels_last = bool(channels_last)

    def load_splits(self) -> Splits:
        if self.download:
            self._download()
        x_train, y_train, x_test, y_test, names = read_cifar(self.root, self.variant)
        available = np.bincount(y_train, minlength=len(names))
        counts = long_tail_counts(self.n_max, len(names), self.imbalance_ratio)
        counts = np.minimum(counts, available - self.val_per_class)  # the head class gives up its val images
        if (counts < 1).any():
            c = int(np.argmin(counts))
            raise UserError(
                f"data.val_per_class={self.val_per_class} leaves no training image of class "
                f"{names[c]!r} ({int(available[c])} images in {self.root})"
            )
        rng = np.random.default_rng(self.seed)
        train, val = [], []
        for c, size in enumerate(counts):
            members = rng.permutation(np.flatnonzero(y_train == c))
            train.append(members[:size])
            val.append(members[size : size + self.val_per_class])  # images the long tail left unused
        train_index, val_index = rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(val))
        return Splits(
            x_train[train_index],
            y_train[train_index],
            x_train[val_index],
            y_train[val_index],
            x_test,
            y_test,
            class_names=names,
        )

    def _download(self) -> None:
        import torchvision  # lazily: the `vision` extra; only the download needs it

        dataset = torchvision.datasets.CIFAR10 if self.variant == "cifar10" else torchvision.datasets.CIFAR100
        for train in (True, False):
            dataset(self.root, train=train, download=True)

    # ---- augmentation: batched on the training device (in_memory) or per sample (dataloader) ----
    def transform(self, name: str):  # noqa: ANN201 - a torchvision transform
        if name != "train" or self.backend != "dataloader":
            return None
        return sample_transform(self.augment, size=32)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        trainer = self.trainer
        if trainer is None or not trainer.training:
            return batch
        images, labels = batch
        if self.backend == "in_memory":  # the fast path: uint8 batch ops where the batch now is
            images = augment_batch(images, self.augment)
        if self.augment.mix != "none":
            return mix_batch(images, labels, self.augment.mix, self.augment.mix_alpha)
        return images, labels

    # ---- the data-to-model contract ------------------------------------------------------
    def backbone_inputs(self) -> dict[str, Any]:
        return {"in_channels": 3}

    def input_transform(self) -> dict[str, Any]:
        return {
            "_target_": "imbalanced.data.images.augment.ImageNormalize",
            "channels": 3,
            "channels_last": self.channels_last,
        }

    def input_transform_state(self) -> dict[str, Tensor]:
        train = np.asarray(self._require_splits().x_train)
        channels = [train[:, c].astype(np.float64) for c in range(train.shape[1])]  # one at a time: ~100 MB
        mean = torch.tensor([float(values.mean()) for values in channels])
        std = torch.tensor([float(values.std()) for values in channels]).clamp_min(1e-6)
        return {"mean": mean.float()[:, None, None], "std": std.float()[:, None, None]}
