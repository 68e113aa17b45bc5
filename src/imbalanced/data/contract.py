"""The data-to-model contract: what a datamodule hands to the model and to the tasks.

Two objects cross from the data to the rest of the template, and nothing else does:

- `DataContract`, from `datamodule.contract()` after `setup`: the training split's class statistics,
  what the backbone needs from the data (`in_features`, `in_channels`, `vocab_size`, ...), the
  optional input transform with its fitted state, the input spec that eval/predict need to read raw
  inputs (saved in the checkpoint) and the data fingerprint (eval's changed-data check).
- `RawInputs`, from the datamodule class's `read_inputs(...)` (a classmethod: eval.py and predict.py
  call it with the checkpoint's data config and input spec, no training data): a file or folder
  turned into model inputs, their labels when asked for, the columns that name each row in the
  predictions, and the collate that batches them (e.g. padding sequences of different lengths).

The tasks, the LightningModule and the callbacks read these two and never ask a datamodule anything
else, so tables, images and a fork's data all take one road.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from imbalanced.data.class_statistics import ClassStatistics
from imbalanced.data.in_memory_batches import IndexBatchSampler, TensorBatchDataset, batch_loader


@dataclass
class DataContract:
    """Everything the model and the tasks take from a set-up datamodule."""

    class_statistics: ClassStatistics
    # settings of the backbone that depend on the data, e.g. {"in_features": 20}; the backbone takes
    # those it has parameters for, and its saved config is complete
    backbone_inputs: dict[str, Any] = field(default_factory=dict)
    # config (`_target_`) of a module the model runs on the inputs before its backbone, e.g. a
    # table's standardization; None: the backbone takes the inputs as the datamodule serves them
    input_transform: dict[str, Any] | None = None
    # the fitted buffers of `input_transform`, by name, copied into the model at fit time
    input_transform_state: dict[str, Tensor] = field(default_factory=dict)
    # what `read_inputs` needs besides the data config to read raw inputs, e.g. a table's column
    # encoding or an image size; saved in the checkpoint
    input_spec: dict[str, Any] = field(default_factory=dict)
    # {split: {"rows": n, "sha256": hex}} (data/fingerprint.py); None: the data cannot give one
    fingerprint: dict[str, Any] | None = None

    @property
    def class_names(self) -> list[str]:
        return list(self.class_statistics.class_names)

    @property
    def num_classes(self) -> int:
        return self.class_statistics.num_classes


@dataclass
class RawInputs:
    """Model inputs read from a user's file or folder by a datamodule class's `read_inputs`."""

    dataset: Dataset  # samples `(input, label)` (label 0 when unlabelled), or a TensorBatchDataset
    labels: np.ndarray | None = None  # int64 class indices in checkpoint order; None: unlabelled
    columns: dict[str, list[Any]] = field(default_factory=dict)  # written first in predictions.csv
    collate_fn: Callable[[list[Any]], Any] | None = None  # None: torch's default collate
    files: list[str] = field(default_factory=list)  # the files read: predict.py never writes over one

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def loader(self, batch_size: int, num_workers: int = 0) -> DataLoader:
        """Ordered, unpadded batches: index batches for in-memory tensors, else a DataLoader."""
        if isinstance(self.dataset, TensorBatchDataset):
            plan = IndexBatchSampler(len(self.dataset), batch_size, shuffle=False, pad=False)
            return batch_loader(self.dataset, plan)
        return DataLoader(
            self.dataset,
            batch_size=batch_size,
            shuffle=False,
            num_workers=num_workers,
            collate_fn=self.collate_fn,
        )
