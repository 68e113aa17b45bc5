"""Deferred re-weighting (Cao et al. 2019): uniform class weights, then the strategy's."""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import torch

log = logging.getLogger(__name__)


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
        log.info(
            "DRW: uniform class weights until epoch %d, then %s",
            self.start_epoch,
            self.strategy_weights.tolist(),
        )

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
