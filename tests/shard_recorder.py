"""Test helper callback: records which training samples each rank sees, batch by batch."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import numpy as np


class RecordTrainSamples(L.Callback):
    """Writes `<path>/seen_rank<R>.json`: per epoch, the training-split row indices of every sample of
    every batch this rank trained on, found by matching the batch's feature rows to the split's rows
    (the synthetic features are continuous, so every row is unique)."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.seen: list[list[int]] = []
        self._index: dict[bytes, int] = {}

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        rows = np.ascontiguousarray(trainer.datamodule.splits.x_train, dtype=np.float32)
        self._index = {row.tobytes(): i for i, row in enumerate(rows)}
        assert len(self._index) == len(rows), "feature rows are not unique"

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.seen.append([])

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        rows = np.ascontiguousarray(batch[0].detach().cpu().numpy(), dtype=np.float32)
        self.seen[-1] += [self._index[row.tobytes()] for row in rows]

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / f"seen_rank{trainer.global_rank}.json").write_text(json.dumps(self.seen))
