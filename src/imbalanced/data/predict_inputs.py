"""What `predict.py` asks a checkpoint's datamodule class for when the inputs are not a table.

A datamodule class may define `predict_inputs(path, config, inputs) -> PredictInputs` (a
classmethod: no training data is needed, only the checkpoint's data config and input spec); it turns
`data.path` into a Dataset of model inputs, plus the columns that identify each row in the output
(e.g. the image path). Datamodules without it are read as tables (data/table.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch.utils.data import Dataset


@dataclass
class PredictInputs:
    dataset: Dataset  # samples `(input, label)` (labels ignored) or inputs
    columns: dict[str, list[Any]] = field(default_factory=dict)  # written first, one value per sample
