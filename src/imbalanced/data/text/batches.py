"""Batches of texts of different lengths: dynamic padding and length-bucketed batch order.

- Dynamic padding: a batch is as wide as its longest text, not as `data.max_length`. In memory
  (`data.backend=in_memory`), the split's ids sit in one int32 matrix and a batch is one gather of
  its rows, cut to their longest length (`TokenBatchDataset`); per sample (`data.backend=dataloader`,
  and eval/predict files) the collate pads (`PadCollate`).
- Length buckets (`LengthBucketedBatchSampler`): padding costs compute in proportion to the spread of
  lengths within a batch, so training batches group texts of similar length. It reorders what the
  training plan drew, within this rank's share: plain shuffling or the class-aware n^q draw keeps
  choosing *which* samples an epoch holds (the sampler's class frequencies are untouched) and DDP
  ranks keep their disjoint shares and equal step counts; only the grouping into batches changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from imbalanced.data.in_memory_batches import IndexBatchSampler, TensorBatchDataset


def padded_matrix(sequences: Sequence[np.ndarray], pad_id: int) -> tuple[Tensor, Tensor]:
    """(ids, lengths): the sequences as rows of an int32 matrix padded with `pad_id` to the longest."""
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    width = int(lengths.max()) if len(lengths) else 1
    ids = np.full((len(sequences), width), pad_id, dtype=np.int32)
    if len(sequences):
        flat = np.concatenate(sequences)
        rows = np.repeat(np.arange(len(sequences)), lengths)
        starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
        ids[rows, np.arange(len(flat)) - starts] = flat
    return torch.from_numpy(ids), torch.from_numpy(lengths)


class TokenBatchDataset(TensorBatchDataset):
    """Padded token ids in memory; an index batch is served cut to its longest text, as int64."""

    def __init__(self, ids: Tensor, lengths: Tensor, labels: Tensor, pad_id: int) -> None:
        super().__init__(ids, labels)
        self.lengths = lengths
        self.pad_id = int(pad_id)

    @classmethod
    def from_sequences(
        cls, sequences: Sequence[np.ndarray], labels: np.ndarray, pad_id: int
    ) -> TokenBatchDataset:
        ids, lengths = padded_matrix(sequences, pad_id)
        return cls(ids, lengths, torch.as_tensor(labels, dtype=torch.long), pad_id)

    def __getitem__(self, index: Tensor) -> tuple[Tensor, Tensor]:
        if index.device != self.features.device:
            index = index.to(self.features.device, non_blocking=True)
        width = max(int(self.lengths[index].max()), 1) if len(index) else 1
        return self.features[index, :width].long(), self.labels[index]

    def sequence(self, index: int) -> Tensor:
        return self.features[index, : max(int(self.lengths[index]), 1)].long()

    def to(self, device: torch.device | str) -> TokenBatchDataset:
        return TokenBatchDataset(
            self.features.to(device), self.lengths.to(device), self.labels.to(device), self.pad_id
        )

    def concatenate(self, other: TokenBatchDataset) -> TokenBatchDataset:
        """The rows of both (refit: training + validation), padded to the wider of the two."""
        width = max(self.features.shape[1], other.features.shape[1])

        def widened(ids: Tensor) -> Tensor:
            return nn.functional.pad(ids, (0, width - ids.shape[1]), value=self.pad_id)

        return TokenBatchDataset(
            torch.cat([widened(self.features), widened(other.features)]),
            torch.cat([self.lengths, other.lengths]),
            torch.cat([self.labels, other.labels]),
            self.pad_id,
        )


class TokenSequences(Dataset):
    """Per-sample view of a `TokenBatchDataset`: `(int64 ids of one text, label)`; `targets` lets
    the template count classes without reading a sample."""

    def __init__(self, batches: TokenBatchDataset) -> None:
        self.batches = batches
        self.targets = batches.labels

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self.batches.sequence(index), int(self.batches.labels[index])


class PadCollate:
    """Pads a list of `(ids, label)` to the batch's longest text (a class: worker processes pickle it)."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = int(pad_id)

    def __call__(self, samples: list[tuple[Tensor, int]]) -> tuple[Tensor, Tensor]:
        ids = nn.utils.rnn.pad_sequence([s for s, _ in samples], batch_first=True, padding_value=self.pad_id)
        return ids, torch.tensor([label for _, label in samples], dtype=torch.long)


class LengthBucketedBatchSampler(IndexBatchSampler):
    """A training plan whose batches group texts of similar length.

    This rank's indices, in the order `plan` drew them (shuffled, or n^q class-aware), are cut into
    pools of `pool_batches` batches; each pool is sorted by length and cut into batches, and the
    full batches are shuffled (seeded by seed + epoch) so that lengths do not rise through the
    epoch. A last, short batch stays last, as without bucketing. Epoch, resume position and DDP
    shard are the plan's.
    """

    def __init__(self, plan: IndexBatchSampler, lengths: Tensor, pool_batches: int) -> None:
        super().__init__(
            plan.dataset_size,
            plan.batch_size,
            shuffle=plan.shuffle,
            seed=plan.seed,
            drop_last=plan.drop_last,
            rank=plan.rank,
            world_size=plan.world_size,
            pad=plan.pad,
        )
        self.plan = plan
        self.lengths = lengths.cpu()
        self.pool_size = int(pool_batches) * plan.batch_size
        self.epoch = plan.epoch
        self.skip_batches, plan.skip_batches = plan.skip_batches, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.plan.set_epoch(epoch)

    def local_indices(self) -> Tensor:
        self.plan.shuffle = self.shuffle  # debug=overfit turns shuffling off on this sampler
        order = self.plan.local_indices()
        size = self.batch_size
        batches: list[Tensor] = []
        for start in range(0, len(order), self.pool_size):
            pool = order[start : start + self.pool_size]
            by_length = pool[torch.argsort(self.lengths[pool], stable=True)]
            batches.extend(by_length[i : i + size] for i in range(0, len(by_length), size))
        if not batches:
            return order
        tail = [batches.pop()] if len(batches[-1]) < size else []
        generator = torch.Generator().manual_seed(self.seed + (self.epoch if self.shuffle else 0))
        shuffled = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
        return torch.cat(shuffled + tail)
