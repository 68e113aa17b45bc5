"""The in-memory datamodule every dataset builds on.

Subclasses implement `load_splits()`; this class then counts classes on the training split (from
the label array, never by loading samples), computes the class weights, fits the feature scaling on
the training split, and serves its tensors through `LoaderDataModule` (`loader_base.py`): fast
index-batched loaders (`data.backend=in_memory`, the default) or standard per-sample DataLoaders
(`data.backend=dataloader`).
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

from imbalanced.data.loader_base import LoaderDataModule
from imbalanced.data.loading import TensorBatchDataset, place_dataset
from imbalanced.errors import UserError
from imbalanced.imbalance.weights import class_counts, compute_class_weights


@dataclass
class Splits:
    """Train/val/test arrays: float32 features (raw, unscaled) and int64 labels 0..C-1."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    feature_names: list[str] = field(default_factory=list)


class InMemoryDataModule(LoaderDataModule):
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
        super().__init__(batch_size, eval_batch_size, seed, sampler, backend, num_workers, pin_memory,
                         persistent_workers)
        if on_device and self.backend != "in_memory":
            raise UserError("data.on_device=true needs data.backend=in_memory (the dataloader backend "
                            "collates batches on the CPU; use data.pin_memory=true to speed up the copy)")
        weight_cfg = class_weights or {"strategy": "none"}
        if OmegaConf.is_config(weight_cfg):  # Hydra hands over DictConfig/ListConfig values
            weight_cfg = OmegaConf.to_container(weight_cfg, resolve=True)
        self.weight_settings = dict(weight_cfg)
        self.on_device = bool(on_device)
        self.splits: Splits | None = None

    # ---- subclasses ---------------------------------------------------------------------
    def load_splits(self) -> Splits:
        raise NotImplementedError

    # ---- setup --------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.splits is not None:  # idempotent: train.py calls it before trainer.fit does
            return
        splits = self.load_splits()
        num_classes = len(splits.class_names)
        self.class_counts = class_counts(splits.y_train, num_classes)
        settings = {k: v for k, v in self.weight_settings.items() if k in ("strategy", "beta", "weights")}
        self.class_weights = compute_class_weights(
            self.class_counts, class_names=splits.class_names, **settings
        )
        self.feature_mean = splits.x_train.mean(axis=0, dtype=np.float64)
        scale = splits.x_train.std(axis=0, dtype=np.float64)
        self.feature_scale = np.where(scale > 0, scale, 1.0)  # constant columns stay as they are
        self.splits = splits
        self._datasets = {
            name: TensorBatchDataset(
                torch.as_tensor(getattr(splits, f"x_{name}"), dtype=torch.float32),
                torch.as_tensor(getattr(splits, f"y_{name}"), dtype=torch.long),
            )
            for name in ("train", "val", "test")
        }

    @property
    def num_classes(self) -> int:
        return len(self._require_splits().class_names)

    @property
    def num_features(self) -> int:
        return int(self._require_splits().x_train.shape[1])

    @property
    def class_names(self) -> list[str]:
        return list(self._require_splits().class_names)

    @property
    def feature_names(self) -> list[str]:
        splits = self._require_splits()
        return list(splits.feature_names) or [f"x{i}" for i in range(self.num_features)]

    def _require_splits(self) -> Splits:
        if self.splits is None:
            raise RuntimeError("call datamodule.setup() first")
        return self.splits

    def weight_report(self) -> dict[str, Any]:
        """What class_weights.json holds."""
        return {
            "strategy": self.weight_settings.get("strategy", "none"),
            "settings": {k: v for k, v in self.weight_settings.items() if k != "strategy"},
            "class_names": self.class_names,
            "counts": [int(c) for c in self.class_counts],
            "weights": [float(w) for w in self.class_weights],
        }

    # ---- what LoaderDataModule serves ----------------------------------------------------
    def split_labels(self, name: str) -> Tensor:
        return self._datasets[name].labels

    def batch_dataset(self, name: str) -> TensorBatchDataset:
        dataset = self._datasets[name] = place_dataset(self._datasets[name], self.trainer, self.on_device)
        return dataset

    def split_dataset(self, name: str) -> Dataset:
        dataset = self._datasets[name]
        return TensorDataset(dataset.features, dataset.labels)  # views: no copy of the data
