"""The data-to-model contract (data/contract.py): what every datamodule declares and gives."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from imbalanced.data.contract import RawInputs
from imbalanced.data.datamodule import LoaderDataModule
from imbalanced.data.dataset_datamodule import DatasetDataModule, DatasetSplits
from imbalanced.data.in_memory_batches import TensorBatchDataset
from imbalanced.data.tables.synthetic import SyntheticDataModule
from imbalanced.errors import UserError


class Named(Dataset):
    def __init__(self, names: list[str], targets: list[int], keep_list: bool = True) -> None:
        if keep_list:
            self.paths = names
        self.names, self.targets = names, targets

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int):
        raise AssertionError("the fingerprint must not load a sample")


class Files(DatasetDataModule):
    def __init__(self, names: dict[str, list[str]], keep_list: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.names, self.keep_list = names, keep_list

    def load_datasets(self) -> DatasetSplits:
        parts = {
            split: Named(names, [i % 2 for i in range(len(names))], self.keep_list)
            for split, names in self.names.items()
        }
        return DatasetSplits(parts["train"], parts["val"], parts["test"], class_names=["a", "b"])


NAMES = {"train": ["t0", "t1", "t2", "t3"], "val": ["v0", "v1"], "test": ["s0", "s1"]}


def test_a_datamodule_gives_one_contract_after_setup():
    datamodule = SyntheticDataModule(n_samples=600, n_features=5, num_classes=3)
    with pytest.raises(RuntimeError, match="setup"):
        datamodule.contract()
    datamodule.setup("fit")
    contract = datamodule.contract()
    assert contract.class_names == datamodule.class_names and contract.num_classes == 3
    np.testing.assert_array_equal(contract.class_statistics.counts, datamodule.class_counts)
    assert contract.backbone_inputs == {"in_features": 5}
    assert contract.input_transform["_target_"].endswith("Standardize")
    assert set(contract.input_transform_state) == {"mean", "scale"}
    assert set(contract.input_spec) == {"encoding"}
    assert set(contract.fingerprint) == {"train", "val", "test"}


def test_data_without_a_reader_says_so_in_one_line():
    with pytest.raises(UserError) as error:
        LoaderDataModule.read_inputs(
            "x.bin", setting="data.path", config={}, spec={}, class_names=["a"], labelled=False
        )
    assert str(error.value) == (
        "data.path=x.bin: this checkpoint's data "
        "(imbalanced.data.datamodule.LoaderDataModule) cannot read raw inputs: its "
        "datamodule class does not implement read_inputs"
    )


def test_dataset_backed_data_is_fingerprinted_by_labels_and_sample_list(caplog):
    first = Files(NAMES)
    first.setup("fit")
    same = Files({k: list(v) for k, v in NAMES.items()})
    same.setup("fit")
    assert first.contract().fingerprint == same.contract().fingerprint
    assert first.state_dict() == {"data_fingerprint": first.contract().fingerprint}
    renamed = Files({**NAMES, "test": ["s0", "other"]})
    renamed.setup("fit")
    changed = renamed.contract().fingerprint
    assert changed["test"] != first.contract().fingerprint["test"]  # another file, same labels
    assert changed["train"] == first.contract().fingerprint["train"]
    with caplog.at_level(logging.INFO):
        unnamed = Files(NAMES, keep_list=False)
        unnamed.setup("fit")
    assert "covers their labels only" in caplog.text
    assert unnamed.contract().fingerprint["test"]["rows"] == 2


def test_raw_inputs_batch_in_order_with_the_data_collate():
    tensors = RawInputs(TensorBatchDataset(torch.arange(10.0)[:, None], torch.zeros(10, dtype=torch.long)))
    batches = [x[:, 0].tolist() for x, _ in tensors.loader(batch_size=4)]
    assert batches == [[0.0, 1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0], [8.0, 9.0]]

    def pad(samples):
        longest = max(len(s) for s, _ in samples)
        return torch.stack([torch.cat([s, s.new_zeros(longest - len(s))]) for s, _ in samples]), None

    sequences = [(torch.ones(n), 0) for n in (1, 3, 2)]
    padded = [x.shape for x, _ in RawInputs(sequences, collate_fn=pad).loader(batch_size=2)]
    assert padded == [torch.Size([2, 3]), torch.Size([1, 2])]
