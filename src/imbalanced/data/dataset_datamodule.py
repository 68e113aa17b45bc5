"""A datamodule over any `torch.utils.data.Dataset` (images on disk, token sequences, ...).

A fork subclasses `DatasetDataModule` and implements `load_datasets()`, returning the three splits as
per-sample datasets (each sample `(input, label)`) and the class names. The loaders are standard
DataLoaders (`data.backend=dataloader`; `datamodule.py`) with `data.num_workers`, `data.pin_memory`,
`data.persistent_workers`, the optional per-sample `train_transform` / `eval_transform` and the
template's samplers (plain shuffling or p(class) ∝ n^q, sharded per DDP rank).

The data-to-model contract (`data/contract.py`, declared by `LoaderDataModule`): the class
statistics and the data fingerprint come from here; `backbone_inputs()`, `input_transform()`,
`input_transform_state()`, `input_spec()` and `read_inputs()` are overridden where the data needs
them. The fingerprint hashes each split's labels and, when a dataset keeps a list of its samples
(`paths`, `files`, or torchvision's `samples`), that list; without one it covers the labels only.

Class counts come from label arrays, never from loading samples: `DatasetSplits.train_labels` when
given, else the dataset's `targets` / `labels` attribute (torchvision's convention), also through
`Subset` and `ConcatDataset`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf
from torch import Tensor
from torch.utils.data import ConcatDataset, Dataset, Subset

from imbalanced.data.class_statistics import ClassStatistics
from imbalanced.data.datamodule import SPLITS, LoaderDataModule
from imbalanced.data.fingerprint import sample_list, split_fingerprint
from imbalanced.errors import UserError

log = logging.getLogger(__name__)

LABEL_ATTRIBUTES = ("targets", "labels")


@dataclass
class DatasetSplits:
    """Per-sample train/val/test datasets; labels are ints 0..C-1 (`*_labels`: optional label arrays,
    read from the datasets' `targets`/`labels` attribute when left out)."""

    train: Dataset
    val: Dataset
    test: Dataset
    class_names: list[str]
    train_labels: Sequence[int] | np.ndarray | Tensor | None = None
    val_labels: Sequence[int] | np.ndarray | Tensor | None = None
    test_labels: Sequence[int] | np.ndarray | Tensor | None = None


def labels_of(dataset: Dataset) -> Tensor | None:
    """The int64 labels of `dataset` read from a label array (None when it has none)."""
    if isinstance(dataset, Subset):
        parent = labels_of(dataset.dataset)
        return None if parent is None else parent[torch.as_tensor(list(dataset.indices), dtype=torch.long)]
    if isinstance(dataset, ConcatDataset):
        parts = [labels_of(part) for part in dataset.datasets]
        return None if any(p is None for p in parts) else torch.cat(parts)  # type: ignore[arg-type]
    for name in LABEL_ATTRIBUTES:
        value = getattr(dataset, name, None)
        if value is not None and not callable(value):
            return torch.as_tensor(np.asarray(value), dtype=torch.long)
    return None


class DatasetDataModule(LoaderDataModule):
    """Subclass and implement `load_datasets()`; the rest (class counts and weights from the labels,
    sharded class-aware loaders) is done here."""

    def __init__(
        self,
        batch_size: int = 256,
        eval_batch_size: int = 1024,
        class_weights: Mapping[str, Any] | None = None,
        seed: int = 0,
        sampler: Mapping[str, Any] | None = None,
        backend: str = "dataloader",
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        train_transform: Callable[[Any], Any] | None = None,
        eval_transform: Callable[[Any], Any] | None = None,
    ) -> None:
        if backend != "dataloader":
            raise UserError(
                f"data.backend={backend!r} is invalid for {type(self).__name__}; allowed: "
                "dataloader (in_memory needs the data as in-memory tensors)"
            )
        super().__init__(
            batch_size, eval_batch_size, seed, sampler, backend, num_workers, pin_memory, persistent_workers
        )
        weight_cfg = class_weights or {"strategy": "none"}
        if OmegaConf.is_config(weight_cfg):  # Hydra hands over DictConfig values
            weight_cfg = OmegaConf.to_container(weight_cfg, resolve=True)
        self.weight_settings = dict(weight_cfg)
        for name, value in (("train_transform", train_transform), ("eval_transform", eval_transform)):
            if value is not None and not callable(value):
                raise UserError(f"data.{name} must be a callable (a `_target_` config), not {value!r}")
        self.train_transform = train_transform
        self.eval_transform = eval_transform
        self.datasets: DatasetSplits | None = None
        self.class_statistics: ClassStatistics | None = None

    # ---- subclasses ---------------------------------------------------------------------
    def load_datasets(self) -> DatasetSplits:
        raise NotImplementedError

    # ---- setup --------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.datasets is not None:  # idempotent: train.py calls it before trainer.fit does
            return
        datasets = self.load_datasets()
        num_classes = len(datasets.class_names)
        self._labels = {name: self._read_labels(datasets, name, num_classes) for name in SPLITS}
        self.class_statistics = ClassStatistics.from_labels(
            self._labels["train"].numpy(), datasets.class_names, self.weight_settings
        )
        self.data_fingerprint = self._fingerprint(datasets)
        self.datasets = datasets

    def _fingerprint(self, datasets: DatasetSplits) -> dict[str, Any]:
        """Labels and sample lists of the splits (data/fingerprint.py), without loading a sample."""
        arrays: dict[str, Any] = {}
        unnamed = []
        for name in SPLITS:
            samples = sample_list(getattr(datasets, name))
            if samples is None:
                unnamed.append(name)
            arrays[f"x_{name}"] = np.array(samples if samples is not None else [], dtype=object)
            arrays[f"y_{name}"] = self._labels[name].numpy()
        if unnamed:
            log.info(
                "%s: the %s split(s) keep no list of their samples (paths, files or samples), so "
                "the data fingerprint covers their labels only",
                type(self).__name__,
                "/".join(unnamed),
            )
        return split_fingerprint(SimpleNamespace(**arrays))

    @staticmethod
    def _read_labels(datasets: DatasetSplits, name: str, num_classes: int) -> Tensor:
        dataset = getattr(datasets, name)
        given = getattr(datasets, f"{name}_labels")
        labels = labels_of(dataset) if given is None else torch.as_tensor(np.asarray(given), dtype=torch.long)
        if labels is None:
            raise UserError(
                f"the {name} split ({type(dataset).__name__}) has no `targets`/`labels` array; return "
                f"DatasetSplits({name}_labels=...) so classes are counted without loading every sample"
            )
        if len(labels) != len(dataset):  # type: ignore[arg-type]
            raise UserError(f"the {name} split has {len(dataset)} samples but {len(labels)} labels")  # type: ignore[arg-type]
        if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
            raise UserError(
                f"the {name} split has labels outside 0..{num_classes - 1} ({num_classes} class names)"
            )
        return labels

    def _require(self) -> DatasetSplits:
        if self.datasets is None:
            raise RuntimeError("call datamodule.setup() first")
        return self.datasets

    @property
    def num_classes(self) -> int:
        return len(self._require().class_names)

    @property
    def class_names(self) -> list[str]:
        return list(self._require().class_names)

    # ---- refit_with_validation (runs/refit.py) ---------------------------------------------
    can_refit = True  # any two datasets concatenate; the samples stay where they are

    def merge_validation_into_training(self) -> None:
        """Train on training + validation samples from now on; the class statistics are recomputed
        from the merged labels, the data fingerprint stays the split's (eval.py still recognises
        the data the run was made from)."""
        datasets = self._require()
        datasets.train = self.merged_dataset(datasets.train, datasets.val)
        self._labels["train"] = torch.cat([self._labels["train"], self._labels["val"]])
        self.class_statistics = ClassStatistics.from_labels(
            self._labels["train"].numpy(), datasets.class_names, self.weight_settings
        )

    def merged_dataset(self, train: Dataset, val: Dataset) -> Dataset:
        """One dataset of `train`'s samples then `val`'s (a subclass may keep its own type)."""
        return ConcatDataset([train, val])

    # ---- what LoaderDataModule serves ----------------------------------------------------
    def split_labels(self, name: str) -> Tensor:
        self._require()
        return self._labels[name]

    def split_dataset(self, name: str) -> Dataset:
        return getattr(self._require(), name)

    def transform(self, name: str) -> Callable[[Any], Any] | None:
        return self.train_transform if name == "train" else self.eval_transform
