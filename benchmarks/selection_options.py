"""Model-selection options measured by `benchmarks/quality.py --ablations` and not adopted.

The defaults' measurement compared, besides the last and the best-by-validation checkpoint, a continuous
prior-corrected selection score and weight averaging. Both lost on the benchmark's tables
(README, "Defaults that need no tuning"), so they live here, for the ablation runs only:

- `BalancedLogLoss` logs `val/balanced_log_loss`, the mean over classes of each class's mean
  negative log-likelihood (a continuous score that does not saturate like balanced accuracy);
  the ablation selects the checkpoint that minimises it.
- `ParameterEMA` keeps an exponential moving average of the parameters, validates and saves it.
  Lightning's `EMAWeightAveraging` is not used: it copies the module when fit starts, before the
  module loads its class counts and weights, and swaps that copy's buffers in for validation.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
import torch.nn.functional as F


class BalancedLogLoss(L.Callback):
    """Logs `val/balanced_log_loss` after each validation epoch (raw logits, one process)."""

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.sums = torch.zeros(pl_module.hparams.num_classes)
        self.counts = torch.zeros(pl_module.hparams.num_classes)

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        x, y = batch
        with torch.no_grad():
            nll = F.cross_entropy(pl_module(x).float(), y, reduction="none").cpu()
        self.sums.index_add_(0, y.cpu(), nll)
        self.counts.index_add_(0, y.cpu(), torch.ones_like(nll))

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        seen = self.counts > 0
        pl_module.log("val/balanced_log_loss", (self.sums[seen] / self.counts[seen]).mean())


class ParameterEMA(L.Callback):
    """EMA of the parameters (buffers untouched); validation, checkpoints and the end use it."""

    def __init__(self, decay: float = 0.999) -> None:
        self.decay = decay
        self.average: list[torch.Tensor] | None = None

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        params = [p.detach() for p in pl_module.parameters()]
        if self.average is None:
            self.average = [p.clone() for p in params]
        else:
            torch._foreach_lerp_(self.average, params, 1 - self.decay)

    def _swap(self, pl_module: L.LightningModule) -> None:
        for average, param in zip(self.average or [], pl_module.parameters(), strict=False):
            current = param.detach().clone()
            param.data.copy_(average)
            average.copy_(current)

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == "fit" and not trainer.sanity_checking:
            self._swap(pl_module)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == "fit" and not trainer.sanity_checking:
            self._swap(pl_module)

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if self.average is not None:
            for (name, _), average in zip(pl_module.named_parameters(), self.average, strict=True):
                checkpoint["state_dict"][name] = average.clone()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for average, param in zip(self.average or [], pl_module.parameters(), strict=False):
            param.data.copy_(average)
