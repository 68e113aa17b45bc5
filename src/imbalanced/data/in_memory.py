"""The in-memory datamodule every dataset builds on, and the data side of the data-to-model contract.

Subclasses implement `load_splits()`; this class then computes the training split's
`class_statistics` (class names, counts from the label array, never by loading samples, and class
weights) and serves its data through `LoaderDataModule` (`datamodule.py`): fast index-batched
loaders (`data.backend=in_memory`, the default) or standard DataLoaders (`data.backend=dataloader`).
Inputs may be tensors or arrays of any shape and dtype (float features, uint8 images, int64 token
ids): they are served as they are, not cast.

What a model needs from a datamodule is declared by `LoaderDataModule.contract()` (`datamodule.py`,
`data/contract.py`); a subclass overrides the parts its data needs (`backbone_inputs`,
`input_transform`, `input_transform_state`, `input_spec`, `read_inputs`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf
from torch import Tensor
from torch.utils.data import Dataset, TensorDataset

from imbalanced.data.class_statistics import ClassStatistics
from imbalanced.data.datamodule import LoaderDataModule
from imbalanced.data.fingerprint import split_fingerprint
from imbalanced.data.in_memory_batches import TensorBatchDataset, place_dataset
from imbalanced.errors import UserError


@dataclass
class Splits:
    """Train/val/test inputs (arrays or tensors, any shape and dtype, samples along the first axis;
    raw, unscaled) and int64 labels 0..C-1. `feature_names` names the columns of feature tables."""

    x_train: Any
    y_train: np.ndarray
    x_val: Any
    y_val: np.ndarray
    x_test: Any
    y_test: np.ndarray
    class_names: list[str]
    feature_names: list[str] = field(default_factory=list)


def check_finite_features(splits: Splits) -> None:
    """Floating-point inputs must be finite *as float32* (what the model computes in): 1e39 passes a
    float64 finite check but is inf after the cast. Integer inputs (e.g. uint8 images) are skipped."""
    for name in ("train", "val", "test"):
        x = np.asarray(getattr(splits, f"x_{name}"))
        if not np.issubdtype(x.dtype, np.floating):
            continue
        finite = np.isfinite(x.astype(np.float32, copy=False))
        if finite.all():
            continue
        where = f"{int((~finite).sum())} value(s)"
        if finite.ndim == 2:
            bad = np.flatnonzero(~finite.all(axis=0))
            names = list(splits.feature_names) or [f"x{i}" for i in range(finite.shape[1])]
            where = (
                f"column(s) { ({names[i]: int((~finite[:, i]).sum()) for i in bad[:10]}) } (column: count)"
            )
        raise UserError(
            f"the {name} split has NaN/inf inputs as float32 in {where}; values beyond +-3.4e38 overflow "
            "float32. Rescale or clean those columns"
        )


def _tensor_dataset(splits: Splits, name: str) -> TensorBatchDataset:
    return TensorBatchDataset(
        torch.as_tensor(getattr(splits, f"x_{name}")),  # keeps the dtype: uint8 images stay uint8
        torch.as_tensor(getattr(splits, f"y_{name}"), dtype=torch.long),
    )


def _concatenate(first: Any, second: Any) -> Any:
    if isinstance(first, Tensor):
        return torch.cat([first, torch.as_tensor(second)])
    return np.concatenate([np.asarray(first), np.asarray(second)])


class InMemoryDataModule(LoaderDataModule):
    can_refit = True  # the splits are arrays: validation rows can join the training rows

    def __init__(
        self,
        batch_size: int = 256,
        eval_batch_size: int = 4096,
        class_weights: Mapping[str, Any] | None = None,
        seed: int = 0,
        sampler: Mapping[str, Any] | None = None,
        on_device: bool = False,
        backend: str = "in_memory",
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
    ) -> None:
        super().__init__(
            batch_size, eval_batch_size, seed, sampler, backend, num_workers, pin_memory, persistent_workers
        )
        if on_device and self.backend != "in_memory":
            raise UserError(
                "data.on_device=true needs data.backend=in_memory (the dataloader backend "
                "collates batches on the CPU; use data.pin_memory=true to speed up the copy)"
            )
        weight_cfg = class_weights or {"strategy": "none"}
        if OmegaConf.is_config(weight_cfg):  # Hydra hands over DictConfig/ListConfig values
            weight_cfg = OmegaConf.to_container(weight_cfg, resolve=True)
        self.weight_settings = dict(weight_cfg)
        self.on_device = bool(on_device)
        self.splits: Splits | None = None
        self.class_statistics: ClassStatistics | None = None

    # ---- subclasses ---------------------------------------------------------------------
    def load_splits(self) -> Splits:
        raise NotImplementedError

    # ---- setup --------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.splits is not None:  # idempotent: train.py calls it before trainer.fit does
            return
        splits = self.load_splits()
        check_finite_features(splits)
        self.data_fingerprint = split_fingerprint(splits)
        self.class_statistics = ClassStatistics.from_labels(
            splits.y_train, splits.class_names, self.weight_settings
        )
        self.splits = splits
        self._datasets = {name: _tensor_dataset(splits, name) for name in ("train", "val", "test")}

    def merge_validation_into_training(self) -> None:
        """Train on training + validation rows from now on (`refit_with_validation`, runs/refit.py).

        The class statistics are recomputed from the merged rows; the data fingerprint stays the
        split's, so eval.py still recognises the data the run was made from.
        """
        splits = self._require_splits()
        splits.x_train = _concatenate(splits.x_train, splits.x_val)
        splits.y_train = np.concatenate([splits.y_train, splits.y_val])
        self.class_statistics = ClassStatistics.from_labels(
            splits.y_train, splits.class_names, self.weight_settings
        )
        self._datasets["train"] = _tensor_dataset(splits, "train")

    @property
    def num_classes(self) -> int:
        return len(self._require_splits().class_names)

    @property
    def class_names(self) -> list[str]:
        return list(self._require_splits().class_names)

    def _require_splits(self) -> Splits:
        if self.splits is None:
            raise RuntimeError("call datamodule.setup() first")
        return self.splits

    # ---- what LoaderDataModule serves ----------------------------------------------------
    def split_labels(self, name: str) -> Tensor:
        return self._datasets[name].labels

    def batch_dataset(self, name: str) -> TensorBatchDataset:
        dataset = self._datasets[name] = place_dataset(self._datasets[name], self.trainer, self.on_device)
        return dataset

    def split_dataset(self, name: str) -> Dataset:
        dataset = self._datasets[name]
        return TensorDataset(dataset.features, dataset.labels)  # views: no copy of the data
