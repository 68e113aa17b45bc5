"""The `dataloader` backend: standard per-sample `DataLoader`s over any `torch.utils.data.Dataset`.

The in-memory backend (`in_memory_batches.py`) answers a whole batch of indices with one tensor gather. This
backend serves data that is not a float matrix or not in memory: `Dataset.__getitem__` per sample,
`collate_fn`, worker processes (`num_workers`), pinned memory and per-sample transforms.

Both backends draw their order from the same batch plan (`IndexBatchSampler` or the class-aware
`ClassAwareBatchSampler`, sharded per DDP rank). `SampleSampler` hands the plan's indices to the
DataLoader one by one and the DataLoader re-batches them with the plan's batch size, so for the same
seed both backends train on exactly the same batches, in the same order, on every rank.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from imbalanced.data.in_memory_batches import IndexBatchSampler
from imbalanced.errors import UserError

BACKENDS = ("in_memory", "dataloader")


@dataclass(frozen=True)
class LoaderSettings:
    """`data.backend`, `data.num_workers`, `data.pin_memory`, `data.persistent_workers`."""

    backend: str = "in_memory"
    num_workers: int = 0
    pin_memory: bool = False
    persistent_workers: bool = False

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise UserError(f"data.backend={self.backend!r} is invalid; allowed: {', '.join(BACKENDS)}")
        workers = self.num_workers
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
            raise UserError(f"data.num_workers={workers!r} is invalid; allowed: an integer >= 0")
        given = [
            f"data.{key}={str(value).lower()}"
            for key, value in (
                ("num_workers", workers),
                ("pin_memory", self.pin_memory),
                ("persistent_workers", self.persistent_workers),
            )
            if value
        ]
        if self.backend == "in_memory" and given:
            raise UserError(
                f"{' '.join(given)} applies to data.backend=dataloader only (data.backend=in_memory "
                "gathers whole batches in the training process); add data.backend=dataloader or drop it"
            )
        if self.persistent_workers and not workers:
            raise UserError("data.persistent_workers=true needs data.num_workers >= 1")

    def loader_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of `torch.utils.data.DataLoader`."""
        kwargs: dict[str, Any] = {
            "num_workers": self.num_workers,
            "pin_memory": self.pin_memory,
            "persistent_workers": self.persistent_workers,
        }
        if self.num_workers and torch.distributed.is_available() and torch.distributed.is_initialized():
            # forking a DDP process (its process-group threads running) can leave a worker stuck on a
            # lock copied mid-use: seen here as a hung ddp_cpu run; forkserver workers start clean
            kwargs["multiprocessing_context"] = "forkserver"
            # the server imports torch and this package once; each worker forked from it then starts
            # in a fraction of a second instead of importing them again (measured ~10 s per loader
            # on a busy 2-core machine, at every stage: fit, validate, test)
            multiprocessing.set_forkserver_preload(["__main__", "torch", __name__])
        return kwargs


class SampleSampler(DistributedSampler):
    """The indices of a batch plan one by one, for a `DataLoader(batch_size=plan.batch_size)`.

    Epoch (`set_epoch`), shuffling (`shuffle`, turned off by `debug=overfit`) and the mid-epoch skip
    on resume (`skip_batches`) are the plan's. It is a `DistributedSampler` (without calling its
    constructor: the plan holds the state) because the plan is already this rank's shard, so
    Lightning must not wrap it in another one.
    """

    def __init__(self, plan: IndexBatchSampler) -> None:
        self.plan = plan

    def __iter__(self) -> Iterator[int]:
        for batch in self.plan:
            yield from batch.tolist()

    def __len__(self) -> int:
        return self.plan.indices_per_epoch()

    def set_epoch(self, epoch: int) -> None:
        self.plan.set_epoch(epoch)

    @property
    def batch_size(self) -> int:
        return self.plan.batch_size

    @property
    def epoch(self) -> int:
        return self.plan.epoch

    @property
    def seed(self) -> int:
        return self.plan.seed

    @property
    def rank(self) -> int:
        return self.plan.rank

    @property
    def num_replicas(self) -> int:
        return self.plan.world_size

    @property
    def num_samples(self) -> int:
        return len(self)

    @property
    def shuffle(self) -> bool:
        return self.plan.shuffle

    @shuffle.setter
    def shuffle(self, value: bool) -> None:
        self.plan.shuffle = value

    @property
    def skip_batches(self) -> int:
        return self.plan.skip_batches

    @skip_batches.setter
    def skip_batches(self, value: int) -> None:
        self.plan.skip_batches = value


def sample_loader(
    dataset: Dataset,
    plan: IndexBatchSampler,
    settings: LoaderSettings,
    collate_fn: Callable[[list[Any]], Any] | None = None,
) -> DataLoader:
    """A standard DataLoader over `dataset` that yields the batches of `plan`."""
    return DataLoader(
        dataset,
        batch_size=plan.batch_size,
        sampler=SampleSampler(plan),
        drop_last=False,
        collate_fn=collate_fn,
        **settings.loader_kwargs(),
    )


class TransformedDataset(Dataset):
    """`dataset` whose samples `(input, label)` have `transform` applied to the input."""

    def __init__(self, dataset: Dataset, transform: Callable[[Any], Any]) -> None:
        self.dataset = dataset
        self.transform = transform

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        sample, label = self.dataset[index]
        return self.transform(sample), label
