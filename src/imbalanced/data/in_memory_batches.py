"""Fast loading of in-memory tensors: whole batches are gathered by index.

A per-sample `Dataset.__getitem__` plus `collate` costs microseconds per sample; slicing a tensor
with an index vector costs about the same per *batch*. `IndexBatchSampler` yields index vectors,
`TensorBatchDataset` answers each with one gather, and the DataLoader runs with `batch_size=None`.

With `data.on_device=true` the whole dataset is moved once to the trainer's device (`place_dataset`),
so a GPU step gathers its batch on the GPU: no host-to-device copy of features, no pinned-memory
staging, and no synchronization per step (only the small index vector is sent, asynchronously).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler


class TensorBatchDataset(Dataset):
    """Features and labels held as tensors; indexing with an index vector returns a whole batch."""

    def __init__(self, features: Tensor, labels: Tensor) -> None:
        if len(features) != len(labels):
            raise ValueError(f"{len(features)} feature rows but {len(labels)} labels")
        self.features = features
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: Tensor) -> tuple[Tensor, Tensor]:
        if index.device != self.features.device:  # device-resident data: gather on the device
            index = index.to(self.features.device, non_blocking=True)
        return self.features[index], self.labels[index]

    @property
    def device(self) -> torch.device:
        return self.features.device

    def to(self, device: torch.device | str) -> TensorBatchDataset:
        """A copy of the dataset on `device` (the tensors are copied once, here)."""
        return TensorBatchDataset(self.features.to(device), self.labels.to(device))


class IndexBatchSampler(DistributedSampler):
    """Yields batches of indices; seeded shuffling per epoch; one shard per DDP rank.

    It is a `DistributedSampler` because it shards itself: Lightning (`use_distributed_sampler=true`)
    replaces the sampler of any loader whose sampler is not one, and would shard it a second time.

    Training (`pad=True`) pads the permutation to a multiple of `world_size` as
    `DistributedSampler` does, so all ranks run the same number of steps; evaluation (`pad=False`)
    shards without duplicates so metrics cover every sample exactly once. Training also drops a
    last batch of a single sample (BatchNorm cannot train on one; with shuffling it is a different
    sample each epoch).
    """

    def __init__(
        self,
        num_samples: int,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
        pad: bool = True,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be >= 1")
        super().__init__(range(num_samples), num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed)
        self.dataset_size = num_samples
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.rank = rank
        self.world_size = world_size
        self.pad = pad
        self.epoch = 0
        # set when resuming mid-epoch: the next iteration starts after this many batches
        self.skip_batches = 0
        # set by `batch_loader` for device-resident data: the epoch's order is sent there once
        self.device: torch.device | None = None
        self.num_samples = self._local_size()  # DistributedSampler's meaning: samples of this rank

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at every epoch start: a new, reproducible order per epoch."""
        self.epoch = epoch

    def _global_order(self) -> Tensor:
        if not self.shuffle:
            return torch.arange(self.dataset_size)
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return torch.randperm(self.dataset_size, generator=generator)

    def local_indices(self) -> Tensor:
        order = self._global_order()
        if self.world_size > 1:
            if self.pad and len(order) % self.world_size:
                extra = self.world_size - len(order) % self.world_size
                order = torch.cat([order, order[:extra]])
            order = order[self.rank :: self.world_size]
        return order

    def _local_size(self) -> int:
        if self.world_size == 1:
            return self.dataset_size
        if self.pad:
            return math.ceil(self.dataset_size / self.world_size)
        return len(range(self.rank, self.dataset_size, self.world_size))

    def __iter__(self):
        indices = self.local_indices()
        if self.device is not None:
            indices = indices.to(self.device)  # one copy per epoch; the batches are views of it
        stop = len(indices) - (len(indices) % self.batch_size if self._drops_tail() else 0)
        first, self.skip_batches = self.skip_batches * self.batch_size, 0
        for start in range(first, stop, self.batch_size):
            yield indices[start : start + self.batch_size]

    def _drops_tail(self) -> bool:
        single = self.pad and self.batch_size > 1 and self._local_size() % self.batch_size == 1
        return self.drop_last or (single and self._local_size() > 1)

    def __len__(self) -> int:
        size = self._local_size()
        return size // self.batch_size if self._drops_tail() else math.ceil(size / self.batch_size)

    def indices_per_epoch(self) -> int:
        """How many indices a whole epoch of this rank yields (all batches together)."""
        return len(self) * self.batch_size if self._drops_tail() else self._local_size()


def batch_loader(dataset: TensorBatchDataset, sampler: IndexBatchSampler) -> DataLoader:
    """A DataLoader that hands each index batch to the dataset in one call (no collate)."""
    if dataset.device.type != "cpu" and hasattr(sampler, "device"):
        sampler.device = dataset.device
    return DataLoader(dataset, sampler=sampler, batch_size=None, num_workers=0)


def place_dataset(dataset: TensorBatchDataset, trainer: Any, on_device: bool) -> TensorBatchDataset:
    """`data.on_device=true`: the dataset moved to the trainer's root device (each DDP rank its own).

    On a CPU trainer (or without a trainer) the data already lives where the model runs, so the
    option is a no-op there (a warning says so).
    """
    if not on_device or trainer is None:
        return dataset
    device = trainer.strategy.root_device
    if device.type == "cpu" and dataset.device.type == "cpu":
        # rank zero only, and once per process (Python's warning filter drops repeats)
        rank_zero_warn("data.on_device=true has no effect on a CPU trainer: the data is already in memory")
        return dataset
    if dataset.device != device:
        dataset = dataset.to(device)
    return dataset
