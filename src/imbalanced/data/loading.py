"""Fast loading of in-memory tensors: whole batches are gathered by index.

A per-sample `Dataset.__getitem__` plus `collate` costs microseconds per sample; slicing a tensor
with an index vector costs about the same per *batch*. `IndexBatchSampler` yields index vectors,
`TensorBatchDataset` answers each with one gather, and the DataLoader runs with `batch_size=None`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset


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
        return self.features[index], self.labels[index]


class IndexBatchSampler:
    """Yields batches of indices; seeded shuffling per epoch; one shard per DDP rank.

    Training (`pad=True`) pads the permutation to a multiple of `world_size` as
    `DistributedSampler` does, so all ranks run the same number of steps; evaluation (`pad=False`)
    shards without duplicates so metrics cover every sample exactly once.
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
        self.num_samples = num_samples
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

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at every epoch start: a new, reproducible order per epoch."""
        self.epoch = epoch

    def _global_order(self) -> Tensor:
        if not self.shuffle:
            return torch.arange(self.num_samples)
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return torch.randperm(self.num_samples, generator=generator)

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
            return self.num_samples
        if self.pad:
            return math.ceil(self.num_samples / self.world_size)
        return len(range(self.rank, self.num_samples, self.world_size))

    def __iter__(self):
        indices = self.local_indices()
        stop = len(indices) - (len(indices) % self.batch_size if self.drop_last else 0)
        first, self.skip_batches = self.skip_batches * self.batch_size, 0
        for start in range(first, stop, self.batch_size):
            yield indices[start : start + self.batch_size]

    def __len__(self) -> int:
        size = self._local_size()
        return size // self.batch_size if self.drop_last else math.ceil(size / self.batch_size)


def batch_loader(dataset: TensorBatchDataset, sampler: IndexBatchSampler) -> DataLoader:
    """A DataLoader that hands each index batch to the dataset in one call (no collate)."""
    return DataLoader(dataset, sampler=sampler, batch_size=None, num_workers=0)
