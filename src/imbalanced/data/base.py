"""The in-memory datamodule every dataset builds on.

Subclasses implement `load_splits()`; this class then counts classes on the training split (from
the label array, never by loading samples), computes the class weights, fits the feature scaling on
the training split, and serves fast index-batched loaders.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import lightning as L
import numpy as np
import torch
from omegaconf import OmegaConf

from imbalanced.checks import SEED_MAX, check_int
from imbalanced.data.loading import IndexBatchSampler, TensorBatchDataset, batch_loader, place_dataset
from imbalanced.data.sampling import ClassAwareBatchSampler, validate_sampler_settings
from imbalanced.imbalance.weights import class_counts, compute_class_weights, strategy_name, strategy_settings


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


class InMemoryDataModule(L.LightningDataModule):
    def __init__(
        self,
        batch_size: int = 256,
        eval_batch_size: int = 4096,
        class_weights: Mapping[str, Any] | None = None,
        seed: int = 0,
        sampler: Mapping[str, Any] | None = None,
        on_device: bool = False,
    ) -> None:
        super().__init__()
        self.batch_size = check_int("data.batch_size", batch_size, minimum=1)
        self.eval_batch_size = check_int("data.eval_batch_size", eval_batch_size, minimum=1)
        weight_cfg = class_weights or {"strategy": "none"}
        if OmegaConf.is_config(weight_cfg):  # Hydra hands over DictConfig/ListConfig values
            weight_cfg = OmegaConf.to_container(weight_cfg, resolve=True)
        self.weight_settings = dict(weight_cfg)
        self.seed = check_int("data.seed", seed, minimum=0, maximum=SEED_MAX)
        # training sampler: p(class) ∝ n^q (data/sampling.py); None keeps plain shuffling
        self.sampler_q = validate_sampler_settings(
            sampler if sampler is None or isinstance(sampler, Mapping)
            else OmegaConf.to_container(sampler, resolve=True)
        )
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
        self.class_weights = compute_class_weights(
            self.class_counts, self.weight_settings, class_names=splits.class_names
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
            "strategy": strategy_name(self.weight_settings),
            "settings": strategy_settings(self.weight_settings),
            "class_names": self.class_names,
            "counts": [int(c) for c in self.class_counts],
            "weights": [float(w) for w in self.class_weights],
        }

    # ---- loaders ------------------------------------------------------------------------
    def _rank_and_world(self) -> tuple[int, int]:
        trainer = self.trainer
        if trainer is None:
            return 0, 1
        return trainer.global_rank, trainer.world_size

    def _loader(self, name: str, train: bool):
        dataset = self._datasets[name] = place_dataset(self._datasets[name], self.trainer, self.on_device)
        rank, world_size = self._rank_and_world()
        if train and self.sampler_q is not None:
            sampler = ClassAwareBatchSampler(
                dataset.labels.cpu(), self.batch_size, q=self.sampler_q, seed=self.seed, rank=rank,
                world_size=world_size,
            )
            return batch_loader(dataset, sampler)
        sampler = IndexBatchSampler(
            len(dataset),
            self.batch_size if train else self.eval_batch_size,
            shuffle=train,
            seed=self.seed,
            rank=rank,
            world_size=world_size,
            pad=train,
        )
        return batch_loader(dataset, sampler)

    def train_dataloader(self):
        return self._loader("train", train=True)

    def val_dataloader(self):
        return self._loader("val", train=False)

    def test_dataloader(self):
        return self._loader("test", train=False)
