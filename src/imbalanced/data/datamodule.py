"""The datamodule base that serves the loaders, on either data backend.

- `data.backend=in_memory` (the default of the bundled datamodules): tensors in memory, one gather
  per batch (`in_memory_batches.py`); fastest for float matrices that fit in memory.
- `data.backend=dataloader`: a standard `torch.utils.data.DataLoader` over a per-sample `Dataset`
  (`dataloader_backend.py`) with `data.num_workers`, `data.pin_memory`, `data.persistent_workers`, a
  per-sample transform and a `collate_fn`; for data that is not a float matrix or not in memory.

Both draw their order from one batch plan per epoch: plain shuffling (`IndexBatchSampler`) or
p(class) ∝ n^q (`ClassAwareBatchSampler`, `sampler=...`), each rank keeping its own strided share
of the one global order. The plans are `DistributedSampler`s, so Lightning's
`use_distributed_sampler=true` (the trainer default) leaves them alone while still giving a fork's
plain DataLoader a `DistributedSampler`.

This class also declares the data side of the data-to-model contract (`data/contract.py`):
`contract()` after `setup`, assembled from the parts below that a datamodule overrides
(`backbone_inputs`, `input_transform`, `input_transform_state`, `input_spec`), and the classmethod
`read_inputs` that eval.py and predict.py call to read raw files for a checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import lightning as L
import numpy as np
import torch
from omegaconf import OmegaConf
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from imbalanced.data.class_statistics import ClassStatistics
from imbalanced.data.contract import DataContract, RawInputs
from imbalanced.data.dataloader_backend import LoaderSettings, TransformedDataset, sample_loader
from imbalanced.data.fingerprint import STATE_KEY
from imbalanced.data.in_memory_batches import IndexBatchSampler, TensorBatchDataset, batch_loader
from imbalanced.data.sampling import ClassAwareBatchSampler, validate_sampler_settings
from imbalanced.errors import UserError
from imbalanced.value_checks import SEED_MAX, check_int

SPLITS = ("train", "val", "test")


class LoaderDataModule(L.LightningDataModule):
    """Train/val/test loaders for a classification datamodule.

    Subclasses provide, per split name (`train`, `val`, `test`):
    - `split_labels(name)`: the int64 labels (for class-aware sampling; read from a labels array,
      never by iterating the data);
    - `split_dataset(name)`: a per-sample `Dataset` returning `(input, label)` (backend `dataloader`);
    - `batch_dataset(name)`: a `TensorBatchDataset` (backend `in_memory`; data that is not a tensor
      pair leaves it unimplemented and that backend then fails with a clear error).
    Optional hooks: `transform(name)` (applied to each sample's input, backend `dataloader`) and
    `collate_fn(name)` (None: torch's default collate).
    """

    def __init__(
        self,
        batch_size: int = 256,
        eval_batch_size: int = 4096,
        seed: int = 0,
        sampler: Mapping[str, Any] | None = None,
        backend: str = "in_memory",
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
    ) -> None:
        super().__init__()
        self.batch_size = check_int("data.batch_size", batch_size, minimum=1)
        self.eval_batch_size = check_int("data.eval_batch_size", eval_batch_size, minimum=1)
        self.seed = check_int("data.seed", seed, minimum=0, maximum=SEED_MAX)
        # training sampler: p(class) ∝ n^q (data/sampling.py); None keeps plain shuffling
        self.sampler_q = validate_sampler_settings(
            sampler
            if sampler is None or isinstance(sampler, Mapping)
            else OmegaConf.to_container(sampler, resolve=True)
        )
        self.loader_settings = LoaderSettings(
            str(backend), num_workers, bool(pin_memory), bool(persistent_workers)
        )
        self._resume_skip: tuple[int, int] | None = None
        self.fixed_train_order = False  # debug=overfit (FixedTrainBatches): the same batches every epoch

    @property
    def backend(self) -> str:
        return self.loader_settings.backend

    # ---- the data-to-model contract ------------------------------------------------------
    # set in `setup` by the subclass: the training split's statistics and the data fingerprint
    class_statistics: ClassStatistics | None = None
    data_fingerprint: dict[str, Any] | None = None
    # `refit_with_validation`: whether the datamodule can train on training + validation rows
    # (`merge_validation_into_training`), and up to how many training samples `auto` does so (None:
    # never; set where a second training was measured to pay for itself)
    can_refit: bool = False
    refit_max_rows: int | None = None
    # the training budget in optimizer steps this data asks for (runs/budget.py); None: budget.min_steps
    budget_min_steps: int | None = None
    # the most passes over the training split the budget may ask for (runs/budget.py); None:
    # budget.max_epochs
    budget_max_epochs: int | None = None

    def contract(self) -> DataContract:
        """What the model and the tasks take from this datamodule (after `setup`)."""
        return DataContract(
            class_statistics=self._require_statistics(),
            backbone_inputs=dict(self.backbone_inputs()),
            input_transform=self.input_transform(),
            input_transform_state=dict(self.input_transform_state()),
            input_spec=dict(self.input_spec()),
            fingerprint=self.data_fingerprint,
        )

    def backbone_inputs(self) -> dict[str, Any]:
        """Backbone settings that depend on the data, e.g. `{"in_features": 20}` for a table."""
        return {}

    def input_transform(self) -> dict[str, Any] | None:
        """Config (`_target_`) of a module the model applies to inputs before its backbone."""
        return None

    def input_transform_state(self) -> dict[str, torch.Tensor]:
        """Fitted buffers of `input_transform()`, by name; copied into the model at fit time."""
        return {}

    def input_spec(self) -> dict[str, Any]:
        """What `read_inputs` needs besides the data config to read raw inputs; saved in checkpoints."""
        return {}

    @classmethod
    def read_inputs(
        cls,
        path: str,
        *,
        setting: str,
        config: Mapping[str, Any],
        spec: Mapping[str, Any],
        class_names: list[str],
        labelled: bool,
    ) -> RawInputs:
        """Read a user's file or folder `path` (given as `setting`) into model inputs, for a
        checkpoint whose data config is `config` and input spec `spec`. `labelled`: eval.py needs
        the labels (mapped to `class_names`, an unknown class is an error); predict.py does not."""
        raise UserError(
            f"{setting}={path}: this checkpoint's data ({cls.__module__}.{cls.__name__}) cannot read "
            "raw inputs: its datamodule class does not implement read_inputs"
        )

    def merge_validation_into_training(self) -> None:
        """Train on training + validation from now on (`refit_with_validation`, runs/refit.py)."""
        raise UserError(f"{type(self).__name__} cannot merge its validation split into training")

    @property
    def refit_by_default(self) -> bool:
        """Whether `refit_with_validation=auto` refits: a training split of at most `refit_max_rows`."""
        limit = self.refit_max_rows
        return self.can_refit and limit is not None and len(self.split_labels("train")) <= limit

    def state_dict(self) -> dict[str, Any]:
        """Saved in checkpoints: what eval.py checks the rebuilt data against (data/fingerprint.py)."""
        return {STATE_KEY: self.data_fingerprint} if self.data_fingerprint else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Nothing to restore: the fingerprint is recomputed from the data at setup."""

    @property
    def class_counts(self) -> np.ndarray:
        """Training-split count per class (`class_statistics.counts`)."""
        return self._require_statistics().counts

    @property
    def class_weights(self) -> np.ndarray:
        """Class weights of the configured strategy (`class_statistics.weights`)."""
        return self._require_statistics().weights

    def _require_statistics(self) -> ClassStatistics:
        if self.class_statistics is None:
            raise RuntimeError("call datamodule.setup() first")
        return self.class_statistics

    # ---- what subclasses serve per split -----------------------------------------------------
    def split_labels(self, name: str) -> Tensor:
        raise NotImplementedError

    def split_dataset(self, name: str) -> Dataset:
        raise NotImplementedError

    def batch_dataset(self, name: str) -> TensorBatchDataset:
        raise UserError(
            f"data.backend=in_memory needs the data as in-memory tensors, which {type(self).__name__} "
            "does not provide; use data.backend=dataloader"
        )

    def transform(self, name: str) -> Callable[[Any], Any] | None:
        return None

    def collate_fn(self, name: str) -> Callable[[list[Any]], Any] | None:
        return None

    # ---- loaders ------------------------------------------------------------------------
    def _rank_and_world(self) -> tuple[int, int]:
        trainer = self.trainer
        if trainer is None:
            return 0, 1
        return trainer.global_rank, trainer.world_size

    def batch_plan(self, name: str, train: bool) -> IndexBatchSampler:
        """This rank's batches of split `name` for one epoch: shuffled (or n^q-drawn) and padded to
        equal length across ranks for training; in order, unpadded for evaluation (each sample once)."""
        rank, world_size = self._rank_and_world()
        labels = self.split_labels(name)
        if not train:
            return IndexBatchSampler(
                len(labels),
                self.eval_batch_size,
                shuffle=False,
                seed=self.seed,
                rank=rank,
                world_size=world_size,
                pad=False,
            )
        if self.sampler_q is not None:
            plan = ClassAwareBatchSampler(
                labels.cpu(),
                self.batch_size,
                q=self.sampler_q,
                seed=self.seed,
                rank=rank,
                world_size=world_size,
            )
        else:
            plan = IndexBatchSampler(
                len(labels),
                self.batch_size,
                shuffle=True,
                seed=self.seed,
                rank=rank,
                world_size=world_size,
                pad=True,
            )
        # Lightning creates the first iterator of a fit before its set_epoch call, and a DataLoader with
        # workers draws its first indices right then: start at the (resumed) epoch and position.
        epoch = int(getattr(self.trainer, "current_epoch", 0) or 0)
        plan.set_epoch(epoch)
        plan.shuffle = not self.fixed_train_order
        skip, self._resume_skip = self._resume_skip, None
        if skip is not None and skip[0] == epoch and 0 < skip[1] < len(plan):
            plan.skip_batches = skip[1]
        return plan

    def skip_train_batches(self, epoch: int, batches: int) -> None:
        """Resume mid-epoch (GracefulInterrupt): the next training plan, if it is for `epoch`, starts
        after its first `batches` batches."""
        self._resume_skip = (int(epoch), int(batches))

    def _loader(self, name: str, train: bool) -> DataLoader:
        plan = self.batch_plan(name, train)
        if self.backend == "in_memory":
            if self.transform(name) is not None:
                raise UserError(
                    f"{type(self).__name__} has a transform for the {name} split, which "
                    "data.backend=in_memory cannot apply; use data.backend=dataloader"
                )
            return batch_loader(self.batch_dataset(name), plan)
        dataset = self.split_dataset(name)
        transform = self.transform(name)
        if transform is not None:
            dataset = TransformedDataset(dataset, transform)
        return sample_loader(dataset, plan, self.loader_settings, self.collate_fn(name))

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", train=False)
