"""`data=image_folder`: a user's images, `DIR/<class>/<image>` or a CSV of `path,label`.

Sources (each a folder of class folders or a CSV file, data/images/sources.py):
- `data.root` (or, the same thing, `data.train_dir`): the training images; the validation and test
  splits are cut from it, stratified by class and seeded (`data.val_fraction`, `data.test_fraction`)
  unless `data.val_dir` / `data.test_dir` give them. A class needs at least one image per split cut
  from it (3 with both cut), otherwise the run stops naming the class and its count.
- Class names are the training folder names (or CSV labels), sorted; a val/test class the training
  images lack is an error naming it.

At setup every listed file is opened once with Pillow and checked (`Image.open` + `verify()`:
header and, for PNG, every chunk's checksum, without decoding pixels; threads; measured cost in the
README). An unreadable file stops the run naming it, or is skipped with a warning counting them
(`data.skip_unreadable=true`); `data.verify_images=false` skips the check. Class counts come from the
label list, never from decoding images. Images are decoded lazily, per sample, in DataLoader
workers (`data.num_workers`), converted to `data.channels` and resized to `data.image_size` (null,
the default: the first training image's own size, so 28x28 digits are not upsampled), and served as
uint8; the model normalizes them (`ChannelNormalize`) with `data.mean` / `data.std` or,
when those are null, with statistics of up to `data.stats_images` training images (seeded sample,
decoded once when training starts).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf
from torch import Tensor
from torch.utils.data import Dataset

from imbalanced.data.contract import RawInputs
from imbalanced.data.dataset_datamodule import DatasetDataModule, DatasetSplits
from imbalanced.data.images.files import ImageFiles, image_size_of, load_image
from imbalanced.data.images.folder_augment import folder_augment_settings, folder_train_transform
from imbalanced.data.images.normalize import channel_statistics, given_statistics, normalize_config
from imbalanced.data.images.raw_inputs import checked_readable, read_image_inputs
from imbalanced.data.images.sources import LabelledFiles, labelled_files
from imbalanced.data.splitting import check_fraction, check_fractions, split_file_rows
from imbalanced.errors import UserError
from imbalanced.value_checks import check_choice, check_int, fail, is_number

log = logging.getLogger(__name__)


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def _image_size(value: Any) -> tuple[int, int]:
    value = _plain(value)
    allowed = "an integer >= 1 (square) or [height, width]"
    if is_number(value):
        size = check_int("data.image_size", value, minimum=1)
        return size, size
    if (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) == 2
        and all(is_number(v) and float(v) == int(v) and v >= 1 for v in value)
    ):
        return int(value[0]), int(value[1])
    raise fail("data.image_size", value, allowed)


def _statistics(key: str, value: Any, channels: int) -> list[float] | None:
    value = _plain(value)
    if value is None:
        return None
    if (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) == channels
        and all(is_number(v) for v in value)
    ):
        if key == "data.std" and min(value) <= 0:
            raise fail(key, value, "positive numbers")
        return [float(v) for v in value]
    raise fail(
        key,
        value,
        f"null (fitted on the training images) or a list of {channels} numbers "
        "(data.channels), in [0, 1] units, e.g. ImageNet's [0.485,0.456,0.406]",
    )


class ImageFolderDataModule(DatasetDataModule):
    # refit_with_validation=auto trains a second model on training + validation images for folders
    # up to this size: on 434- and 837-image long-tailed digit folders the 15% held out (rare
    # classes included) cost 1-2 points against a loop that trains on every image
    # (docs/images-quality.md); a larger folder loses less to it and pays more for a second training
    refit_max_rows = 10_000

    def __init__(
        self,
        root: str | None = None,
        train_dir: str | None = None,
        val_dir: str | None = None,
        test_dir: str | None = None,
        image_size: int | Sequence[int] | None = None,
        channels: int = 3,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        stats_images: int = 1000,
        verify_images: bool = True,
        skip_unreadable: bool = False,
        num_workers: int = 2,
        persistent_workers: bool | None = None,
        augment: Mapping[str, Any] | None = None,
        budget_steps: int | None = None,
        budget_max_epochs: int | None = None,
        **kwargs: Any,
    ) -> None:
        if persistent_workers is None:  # keep the decoding workers between epochs when there are any
            persistent_workers = isinstance(num_workers, int) and num_workers > 0
        super().__init__(num_workers=num_workers, persistent_workers=persistent_workers, **kwargs)
        if root and train_dir:
            raise UserError(
                f"data.root={root} and data.train_dir={train_dir} name the same thing (the "
                "training images); give one of them"
            )
        if not (root or train_dir):
            raise UserError(
                "data.root is not set; give the images: data.root=DIR (DIR/<class>/<image>) "
                "or a CSV of path,label, or data.train_dir=DIR"
            )
        self.train_setting = "data.root" if root else "data.train_dir"
        self.train_source = str(root or train_dir)
        self.fixed = {name: str(value) for name, value in (("val", val_dir), ("test", test_dir)) if value}
        for setting, value in [
            (self.train_setting, self.train_source),
            *((f"data.{n}_dir", v) for n, v in self.fixed.items()),
        ]:
            if not Path(value).expanduser().exists():  # cheap: the listing waits for setup
                raise UserError(
                    f"{setting}={value}: no such folder or file "
                    f"(resolved to {Path(value).expanduser().resolve()})"
                )
        self.channels = int(check_choice("data.channels", channels, (1, 3)))
        # None until setup: the images' own size (measured in docs/images-quality.md: upsampling
        # 8x8 digits to 32x32 lost 1 to 4 points and cost 16x the compute)
        self.image_size = None if _plain(image_size) is None else _image_size(image_size)
        self.val_fraction, self.test_fraction = float(val_fraction), float(test_fraction)
        automatic = [n for n in ("val", "test") if n not in self.fixed]
        if len(automatic) == 2:
            check_fractions(self.val_fraction, self.test_fraction)
        for name in automatic:
            check_fraction(f"data.{name}_fraction", getattr(self, f"{name}_fraction"))
        self.mean = _statistics("data.mean", mean, self.channels)
        self.std = _statistics("data.std", std, self.channels)
        if (self.mean is None) != (self.std is None):
            raise UserError(
                "data.mean and data.std go together: give both, or neither (fitted on the training images)"
            )
        self.stats_images = check_int("data.stats_images", stats_images, minimum=1)
        self._statistics: tuple[Any, dict[str, Tensor]] | None = None  # (the training split, its statistics)
        self.verify_images = bool(verify_images)
        self.skip_unreadable = bool(skip_unreadable)
        self.augment = _plain(augment)
        # replaces budget.min_steps (runs/budget.py); null keeps it
        self.budget_min_steps = (
            None if budget_steps is None else check_int("data.budget_steps", budget_steps, minimum=1)
        )
        # caps the passes the budget asks for (a tiny folder's epochs are one batch each); null keeps
        # budget.max_epochs
        self.budget_max_epochs = (
            None
            if budget_max_epochs is None
            else check_int("data.budget_max_epochs", budget_max_epochs, minimum=1)
        )
        folder_augment_settings(self.augment, self.image_size or (32, 32))  # bad settings fail here

    def transform(self, name: str) -> Callable[[Any], Any] | None:
        """Training images: `data.train_transform` when given, else `data.augment` (folder_augment.py)."""
        if name != "train" or self.train_transform is not None:
            return super().transform(name)
        if not hasattr(self, "_train_augment"):
            self._train_augment = folder_train_transform(self.augment, self.image_size)
        return self._train_augment

    # ---- listing, checking, splitting ---------------------------------------------------
    def load_datasets(self) -> DatasetSplits:
        pool = labelled_files(self.train_setting, self.train_source)
        fixed = {name: labelled_files(f"data.{name}_dir", value) for name, value in self.fixed.items()}
        if self.verify_images:
            pool, fixed = self._readable(pool), {n: self._readable(f) for n, f in fixed.items()}
        class_names = sorted(set(pool.labels))
        if self.image_size is None and pool.paths:
            self.image_size = image_size_of(pool.paths[0])
            log.info(
                "data.image_size=null: %dx%d, the size of %s; images of other sizes are resized to it "
                "(data.image_size=N sets it)",
                *self.image_size,
                pool.paths[0],
            )
        if len(class_names) < 2:
            raise UserError(f"{pool.source}: only one class {class_names}; a classifier needs at least 2")
        index = {name: i for i, name in enumerate(class_names)}
        for files in fixed.values():
            unknown = sorted(set(files.labels) - set(class_names))
            if unknown:
                raise UserError(
                    f"{files.source} has class(es) {unknown} that the training images "
                    f"({pool.source}) lack; the classes are {class_names}"
                )
        labels = np.array([index[label] for label in pool.labels], dtype=np.int64)
        rows = self._split(labels, class_names, pool.source)
        paths = np.array(pool.paths, dtype=object)
        parts: dict[str, tuple[np.ndarray, np.ndarray]] = {
            name: (paths[r], labels[r]) for name, r in rows.items()
        }
        for name, files in fixed.items():
            parts[name] = (
                np.array(files.paths, dtype=object),
                np.array([index[label] for label in files.labels], dtype=np.int64),
            )
        self._pool_splits = list(rows)  # the splits cut from the pool
        datasets = {
            name: ImageFiles(list(x), y, self.channels, self.image_size) for name, (x, y) in parts.items()
        }
        return DatasetSplits(datasets["train"], datasets["val"], datasets["test"], class_names=class_names)

    def _readable(self, files: LabelledFiles) -> LabelledFiles:
        kept = set(checked_readable(files.paths, self.skip_unreadable, files.source))
        if len(kept) == len(files.paths):
            return files
        pairs = [(p, label) for p, label in zip(files.paths, files.labels, strict=True) if p in kept]
        return LabelledFiles([p for p, _ in pairs], [label for _, label in pairs], files.source)

    def _split(self, labels: np.ndarray, class_names: list[str], source: str) -> dict[str, np.ndarray]:
        """Row indices of the pool per split cut from it (train always), stratified and seeded."""
        # test before val, as the generated data are cut (splitting.stratified_split)
        automatic = {n: getattr(self, f"{n}_fraction") for n in ("test", "val") if n not in self.fixed}
        train, val, test = split_file_rows(
            labels,
            class_names,
            automatic,
            self.seed,
            min_train_rows=0,
            source=source,
            unit="images",
            fixed_settings="data.val_dir / data.test_dir",
        )
        split = {"train": train, "val": val, "test": test}
        return {name: np.sort(rows) for name, rows in split.items() if rows is not None}

    def setup(self, stage: str | None = None) -> None:
        super().setup(stage)
        # eval.py checks that its rebuilt test split is the same images; a split from a fixed folder
        # cannot hold training images, so only the splits cut from the pool are fingerprinted
        fingerprint = self.data_fingerprint or {}
        self.data_fingerprint = {name: fingerprint[name] for name in self._pool_splits if name in fingerprint}

    def merged_dataset(self, train: Dataset, val: Dataset) -> Dataset:
        """One list of files, so the refit model's normalization is fitted on the images it trains on."""
        assert isinstance(train, ImageFiles) and isinstance(val, ImageFiles)
        targets = np.concatenate([train.targets, val.targets])
        return ImageFiles([*train.paths, *val.paths], targets, self.channels, self.image_size)

    # ---- the data-to-model contract (data/contract.py) -------------------------------------
    def backbone_inputs(self) -> dict[str, Any]:
        height, width = self.image_size
        return {
            "in_channels": self.channels,
            "image_size": [height, width],
            "in_features": self.channels * height * width,
        }

    def input_transform(self) -> dict[str, Any]:
        return normalize_config(self.channels)

    def input_transform_state(self) -> dict[str, Tensor]:
        if self.mean is not None and self.std is not None:
            return given_statistics(self.mean, self.std)
        train = self._require().train
        assert isinstance(train, ImageFiles)
        if self._statistics is None or self._statistics[0] is not train:  # decoded once per training split
            rng = np.random.default_rng(self.seed)
            chosen = np.sort(rng.choice(len(train), size=min(self.stats_images, len(train)), replace=False))
            # a file that fails to decode here (data.verify_images=false) is one error line naming it
            images = torch.stack([load_image(train.paths[i], self.channels, self.image_size) for i in chosen])
            self._statistics = (train, channel_statistics(images))
        return self._statistics[1]

    def input_spec(self) -> dict[str, Any]:
        """eval.py and predict.py read image files for this checkpoint with the same channels and size."""
        return {"images": {"channels": self.channels, "image_size": list(self.image_size)}}

    @classmethod
    def read_inputs(cls, path: str, **kwargs: Any) -> RawInputs:
        """eval.py `data.test_path` / predict.py `data.path`: image files (data/images/raw_inputs.py)."""
        return read_image_inputs(path, **kwargs)
