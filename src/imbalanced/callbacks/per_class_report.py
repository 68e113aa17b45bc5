"""Per-class test statistics: confusion matrix and per-class F1."""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torchmetrics.classification import MulticlassConfusionMatrix, MulticlassF1Score

from imbalanced.metrics import per_class_f1_key

log = logging.getLogger(__name__)


class PerClassTestStats(L.Callback):
    """Collects the test confusion matrix and per-class F1 with torchmetrics (synced across DDP ranks).

    Uses the logits the module's `test_step` returns (it runs the model again only if a module
    returns nothing). Logs `test/f1/<i>` (metrics.json gathers them into `test/per_class_f1`) and
    keeps `confusion` (counts, rows = true class) for the plots; both are identical on every rank.
    """

    def __init__(self) -> None:
        super().__init__()
        self.confusion: np.ndarray | None = None
        self.per_class_f1: np.ndarray | None = None
        self._metrics: dict[str, Any] = {}

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        num_classes = int(pl_module.hparams.num_classes)
        self._metrics = {
            "confusion": MulticlassConfusionMatrix(num_classes).to(pl_module.device),
            "f1": MulticlassF1Score(num_classes, average="none").to(pl_module.device),
        }

    def on_test_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        x, y = batch[0], batch[1]
        logits = outputs if isinstance(outputs, Tensor) else None
        if logits is None:
            with torch.no_grad():
                logits = pl_module(x)
        for metric in self._metrics.values():
            metric.update(logits.detach(), y)

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        confusion = self._metrics["confusion"].compute()  # all-reduce under DDP
        f1 = self._metrics["f1"].compute().float()
        self.confusion = confusion.cpu().numpy().astype(np.int64)
        self.per_class_f1 = f1.cpu().numpy()
        pl_module.log_dict({per_class_f1_key("test", i): v for i, v in enumerate(f1)}, sync_dist=True)
        for metric in self._metrics.values():
            metric.reset()
