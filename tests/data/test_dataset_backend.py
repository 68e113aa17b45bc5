"""The `dataloader` data backend beside the in-memory one: same batches from the same plan, worker
processes, Lightning's sampler replacement, the mid-epoch skip, settings errors, and
`DatasetDataModule` over any torch Dataset."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset, DistributedSampler, Subset, TensorDataset

from imbalanced.data.dataloader_backend import LoaderSettings, SampleSampler, sample_loader
from imbalanced.data.dataset_datamodule import DatasetDataModule, DatasetSplits, labels_of
from imbalanced.data.in_memory_batches import IndexBatchSampler
from imbalanced.errors import UserError

SMALL = ["data.n_samples=600", "data.batch_size=32"]


def _datamodule(compose_cfg, *overrides: str, rank: int = 0, world_size: int = 1):
    from imbalanced.from_config import build_datamodule

    datamodule = build_datamodule(compose_cfg(*SMALL, *overrides))
    datamodule.setup("fit")
    datamodule.trainer = SimpleNamespace(global_rank=rank, world_size=world_size)
    return datamodule


def _epochs(loader: DataLoader, epochs: int = 2) -> list[list[tuple[torch.Tensor, torch.Tensor]]]:
    result = []
    for epoch in range(epochs):
        for sampler in (loader.sampler, getattr(loader.batch_sampler, "sampler", None)):
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(epoch)  # as Lightning does at every epoch start
        result.append([(x.clone(), y.clone()) for x, y in loader])
    return result


def _same(a, b) -> bool:
    return len(a) == len(b) and all(
        len(ea) == len(eb)
        and all(
            torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in zip(ea, eb, strict=True)
        )
        for ea, eb in zip(a, b, strict=True)
    )


@pytest.mark.parametrize("sampler", ["none", "class_balanced", "sqrt"])
@pytest.mark.parametrize(("rank", "world_size"), [(0, 1), (1, 2)])
def test_both_backends_serve_the_same_batches(compose_cfg, sampler, rank, world_size):
    loaders = {
        backend: _datamodule(
            compose_cfg, f"sampler={sampler}", f"data.backend={backend}", rank=rank, world_size=world_size
        )
        for backend in ("in_memory", "dataloader")
    }
    for split in ("train_dataloader", "val_dataloader", "test_dataloader"):
        batches = {backend: _epochs(getattr(dm, split)()) for backend, dm in loaders.items()}
        assert _same(batches["in_memory"], batches["dataloader"]), split
    assert isinstance(loaders["dataloader"].train_dataloader().sampler, SampleSampler)


def test_worker_processes_serve_the_same_batches(compose_cfg):
    single = _datamodule(compose_cfg, "data.backend=dataloader", "sampler=class_balanced")
    workers = _datamodule(
        compose_cfg,
        "data.backend=dataloader",
        "sampler=class_balanced",
        "data.num_workers=2",
        "data.persistent_workers=true",
    )
    loader = workers.train_dataloader()
    assert loader.num_workers == 2 and loader.persistent_workers
    assert _same(_epochs(single.train_dataloader()), _epochs(loader))


def test_lightning_shards_a_plain_loader_and_leaves_the_template_loaders_alone(compose_cfg, tmp_path):
    """What `use_distributed_sampler=true` (configs/trainer/default.yaml) does under DDP, read from
    Lightning's data_connector: it replaces any sampler that is not a DistributedSampler."""
    from lightning.pytorch.trainer.states import RunningStage

    from imbalanced.from_config import build_trainer

    trainer = build_trainer(compose_cfg("trainer=ddp_cpu", f"paths.output_dir={tmp_path}"))
    connector = trainer._accelerator_connector
    assert connector.use_distributed_sampler and connector.is_distributed

    def prepared(loader):
        return trainer._data_connector._prepare_dataloader(loader, shuffle=True, mode=RunningStage.TRAINING)

    plain = DataLoader(TensorDataset(torch.randn(10, 2), torch.arange(10)), batch_size=4, shuffle=True)
    sharded = prepared(plain)  # a fork's plain DataLoader: each rank gets its shard
    assert isinstance(sharded.sampler, DistributedSampler) and sharded.sampler.num_replicas == 2
    for backend in ("in_memory", "dataloader"):
        for sampler in ("none", "class_balanced"):
            datamodule = _datamodule(
                compose_cfg, f"data.backend={backend}", f"sampler={sampler}", rank=0, world_size=2
            )
            for loader in (datamodule.train_dataloader(), datamodule.val_dataloader()):
                assert prepared(loader) is loader  # already this rank's shard: not wrapped again


@pytest.mark.parametrize("sampler", ["none", "class_balanced"])
def test_resume_skip_and_overfit_fixed_batches_reach_the_dataloader_sampler(compose_cfg, sampler):
    from imbalanced.callbacks.fixed_batches import FixedTrainBatches

    datamodule = _datamodule(compose_cfg, "data.backend=dataloader", f"sampler={sampler}")
    full = [y for _, y in datamodule.train_dataloader()]
    loader = datamodule.train_dataloader()
    loader.sampler.skip_batches = 3  # what GracefulInterrupt sets on a mid-epoch resume
    rest = [y for _, y in loader]
    assert len(rest) == len(full) - 3 and all(torch.equal(a, b) for a, b in zip(rest, full[3:], strict=True))
    assert [len(y) for _, y in loader] == [len(y) for y in full]  # the skip applies to one epoch only

    loader = datamodule.train_dataloader()
    FixedTrainBatches().on_train_start(SimpleNamespace(train_dataloader=loader), None)
    first, second = _epochs(loader)
    assert _same([first], [second])  # debug=overfit: the same batches every epoch


def test_sample_sampler_length_is_what_it_yields():
    for size, batch, rank, world in [(21, 10, 0, 1), (101, 8, 1, 2), (64, 64, 0, 1), (7, 3, 0, 2)]:
        sampler = SampleSampler(IndexBatchSampler(size, batch, seed=1, rank=rank, world_size=world))
        assert len(list(sampler)) == len(sampler)
    loader = sample_loader(
        TensorDataset(torch.arange(21.0)), IndexBatchSampler(21, 10, seed=1), LoaderSettings("dataloader")
    )
    assert [len(b[0]) for b in loader] == [10, 10] == [10] * len(loader)  # no 1-sample BatchNorm batch


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data.backend=disk"], r"data.backend='disk' is invalid; allowed: in_memory, dataloader"),
        (["data.num_workers=2"], r"data.num_workers=2 applies to data.backend=dataloader only"),
        (["data.pin_memory=true"], r"data.pin_memory=true applies to data.backend=dataloader only"),
        (["data.backend=dataloader", "data.num_workers=-1"], r"data.num_workers=-1 is invalid"),
        (["data.backend=dataloader", "data.persistent_workers=true"], r"persistent_workers=true needs"),
        (
            ["data.backend=dataloader", "data.on_device=true"],
            r"data.on_device=true needs data.backend=in_memory",
        ),
    ],
)
def test_bad_loader_settings_fail_before_any_data_loads(compose_cfg, overrides, message):
    from imbalanced.from_config import build_datamodule

    with pytest.raises(UserError, match=message):
        build_datamodule(compose_cfg(*overrides))


# ---- DatasetDataModule: any torch Dataset ------------------------------------------------------------
class Sequences(Dataset):
    """Variable-length token sequences (not a float matrix); counts every __getitem__ call."""

    def __init__(self, labels: list[int], seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.targets = labels
        self.tokens = [torch.randint(1, 50, (3 + i % 5,), generator=generator) for i in range(len(labels))]
        self.loaded = 0

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        self.loaded += 1
        return self.tokens[index], self.targets[index]


def pad_batch(samples):
    tokens, labels = zip(*samples, strict=True)
    return torch.nn.utils.rnn.pad_sequence(list(tokens), batch_first=True), torch.tensor(labels)


class SequenceData(DatasetDataModule):
    def load_datasets(self) -> DatasetSplits:
        train = [0] * 60 + [1] * 15 + [2] * 5
        return DatasetSplits(
            Sequences(train, 0),
            Sequences([0, 1, 2] * 4, 1),
            Sequences([0, 1, 2] * 5, 2),
            class_names=["a", "b", "c"],
        )

    def collate_fn(self, name: str):
        return pad_batch


def test_dataset_datamodule_counts_from_labels_and_serves_class_balanced_batches():
    datamodule = SequenceData(
        batch_size=16,
        sampler={"q": 0.0},
        class_weights={"strategy": "balanced"},
        seed=3,
        train_transform=lambda tokens: tokens.flip(0),
    )
    datamodule.setup("fit")
    assert datamodule.datasets.train.loaded == 0  # counted from `targets`, no sample loaded
    assert datamodule.class_counts.tolist() == [60, 15, 5]
    np.testing.assert_allclose(datamodule.class_weights, 80 / (3 * np.array([60, 15, 5])))
    labels = torch.cat([y for _, y in datamodule.train_dataloader()])
    assert len(labels) == 80 and torch.bincount(labels, minlength=3).min() >= 15  # about 80/3 each
    first = next(iter(datamodule.train_dataloader()))[0]
    assert first.ndim == 2 and first.dtype == torch.long  # padded token ids, not floats
    x, _ = next(iter(datamodule.val_dataloader()))
    raw = datamodule.datasets.val.tokens[0]
    assert torch.equal(x[0, : len(raw)], raw)  # eval split: no train transform
    shards = []
    for rank in (0, 1):
        datamodule.trainer = SimpleNamespace(global_rank=rank, world_size=2)
        shards.append(torch.cat([y for _, y in datamodule.val_dataloader()]))
    assert len(shards[0]) + len(shards[1]) == 12  # evaluation: each sample once across ranks


def test_labels_are_read_through_subset_and_concat_and_missing_labels_are_a_clear_error():
    base = Sequences([0, 1, 2, 1, 0], 0)
    assert labels_of(Subset(base, [4, 1])).tolist() == [0, 1]
    assert labels_of(ConcatDataset([base, Subset(base, [2])])).tolist() == [0, 1, 2, 1, 0, 2]

    class Unlabelled(SequenceData):
        def load_datasets(self) -> DatasetSplits:
            data = TensorDataset(torch.randn(4, 2), torch.tensor([0, 1, 0, 1]))
            return DatasetSplits(data, data, data, class_names=["a", "b"])

    with pytest.raises(UserError, match=r"the train split \(TensorDataset\) has no `targets`/`labels` array"):
        Unlabelled().setup("fit")
    with pytest.raises(UserError, match="data.backend='in_memory' is invalid for SequenceData"):
        SequenceData(backend="in_memory")


def test_a_refused_loader_setting_is_one_error_line_and_exit_2(tmp_path, monkeypatch, capsys):
    from inprocess import run_app

    assert (
        run_app(
            "train.py",
            "data.backend=dataloader",
            "data.persistent_workers=true",
            run_dir=tmp_path,
            monkeypatch=monkeypatch,
        )
        == 2
    )
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "error: data.persistent_workers=true needs data.num_workers >= 1"
    )
