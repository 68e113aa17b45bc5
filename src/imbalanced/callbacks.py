"""Lightning callbacks of the template."""

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


class TestClassStats(L.Callback):
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


class FixedTrainBatches(L.Callback):
    """Turns off the training shuffle so that, with `trainer.limit_train_batches=N`, every epoch sees
    the same N batches (what `debug=overfit` needs).

    Lightning's own `trainer.overfit_batches` swaps the loader's sampler for a `SequentialSampler`,
    which breaks index-batched loaders (the template's `IndexBatchSampler` yields whole batches of
    indices); this callback keeps the loader and only stops its shuffling.
    """

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        loaders = trainer.train_dataloader
        for loader in loaders if isinstance(loaders, (list, tuple)) else [loaders]:
            samplers = [getattr(loader, "batch_sampler", None), getattr(loader, "sampler", None)]
            fixed = False
            for sampler in samplers:
                if hasattr(sampler, "shuffle"):
                    sampler.shuffle = False
                    fixed = True
            if not fixed:
                raise RuntimeError(
                    f"FixedTrainBatches: the train loader's sampler ({type(loader.sampler).__name__}) has "
                    "no `shuffle` attribute; use trainer.overfit_batches with a plain DataLoader instead"
                )


class DeferredReweighting(L.Callback):
    """Uniform class weights before epoch `start_epoch`, the strategy's weights from then on.

    The strategy's weights are what `ImbalancedClassifier.setup` copied into the module's
    `class_weights` buffer; this callback keeps a copy of them in its own state (saved in the
    checkpoint's callback state, so a resumed run switches at the same epoch with the same
    weights) and writes ones or that copy into the buffer with `copy_` at each epoch start. After
    training the buffer holds the strategy's weights again. The module's state dict is unchanged,
    so checkpoints load with `load_from_checkpoint` alone.
    """

    def __init__(self, start_epoch: int) -> None:
        super().__init__()
        if isinstance(start_epoch, bool) or int(start_epoch) != start_epoch or start_epoch < 0:
            raise ValueError(f"drw_start_epoch={start_epoch!r} must be an integer >= 0")
        self.start_epoch = int(start_epoch)
        self.strategy_weights: torch.Tensor | None = None

    def weights_for_epoch(self, epoch: int, strategy_weights: torch.Tensor) -> torch.Tensor:
        return strategy_weights if epoch >= self.start_epoch else torch.ones_like(strategy_weights)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.strategy_weights is None:  # fresh run (a resumed one restored them from its state)
            self.strategy_weights = pl_module.class_weights.detach().clone().cpu()
        log.info("DRW: uniform class weights until epoch %d, then %s", self.start_epoch,
                 self.strategy_weights.tolist())

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        weights = self.weights_for_epoch(trainer.current_epoch, self.strategy_weights)
        pl_module.class_weights.copy_(weights.to(pl_module.class_weights.device))

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pl_module.class_weights.copy_(self.strategy_weights.to(pl_module.class_weights.device))

    def state_dict(self) -> dict[str, Any]:
        weights = None if self.strategy_weights is None else self.strategy_weights.tolist()
        return {"start_epoch": self.start_epoch, "strategy_weights": weights}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict.get("strategy_weights") is not None:
            self.strategy_weights = torch.tensor(state_dict["strategy_weights"], dtype=torch.float32)
