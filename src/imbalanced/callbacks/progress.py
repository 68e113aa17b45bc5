"""The training progress bar, saying where the whole run is: `Epoch 3/28`, and `Refit epoch 3/28`
for the second training of `refit_with_validation` (Lightning's bar shows `Epoch 2`, 0-based,
with no total and nothing telling the two trainings apart)."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar


class RunProgressBar(TQDMProgressBar):
    def __init__(
        self, refresh_rate: int = 1, process_position: int = 0, leave: bool = False, stage: str = "Epoch"
    ) -> None:
        super().__init__(refresh_rate=refresh_rate, process_position=process_position, leave=leave)
        self.stage = stage  # the refit sets "Refit epoch" (runs/refit.py)

    def on_train_epoch_start(self, trainer: L.Trainer, *args: Any) -> None:
        super().on_train_epoch_start(trainer, *args)
        self.train_progress_bar.set_description(
            epoch_description(self.stage, trainer.current_epoch, trainer.max_epochs)
        )


def epoch_description(stage: str, current_epoch: int, max_epochs: int | None) -> str:
    """`Epoch 3/28` for the 0-based `current_epoch` 2 (no total when the run is bounded by steps)."""
    total = f"/{max_epochs}" if max_epochs is not None and max_epochs > 0 else ""
    return f"{stage} {current_epoch + 1}{total}"
