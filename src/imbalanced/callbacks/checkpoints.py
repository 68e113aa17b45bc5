"""`ModelCheckpoint` whose `last.ckpt` is the model at the end of every epoch.

Lightning 2.6 writes `last.ckpt` only in a step that also wrote a top-k checkpoint
(`ModelCheckpoint.on_validation_end`: "Only save last checkpoint if a checkpoint was actually saved
in this step"), so with `monitor=val/balanced_accuracy` and `save_top_k=1`, `last.ckpt` is a copy of
the best checkpoint: a run tested on "last", or resumed from it, silently went back to the best epoch.
This subclass writes `last.ckpt` after every validation (or training epoch, when there is no
validation) whatever the top-k did; everything else is Lightning's. Under `fast_dev_run`
(`debug=fdr`) nothing is written: Lightning's `on_train_end` would still write `last.ckpt` there.
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from typing_extensions import override


class EveryEpochLastCheckpoint(ModelCheckpoint):
    @override
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        due = not self._should_skip_saving_checkpoint(trainer) and self._should_save_on_train_epoch_end(
            trainer
        )
        super().on_train_epoch_end(trainer, pl_module)
        self._save_last_if_missed(trainer, due)

    @override
    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        due = not self._should_skip_saving_checkpoint(trainer) and not self._should_save_on_train_epoch_end(
            trainer
        )
        super().on_validation_end(trainer, pl_module)
        self._save_last_if_missed(trainer, due)

    @override
    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.fast_dev_run:  # Lightning checks fast_dev_run in every save but this one
            super().on_train_end(trainer, pl_module)

    def _save_last_if_missed(self, trainer: L.Trainer, due: bool) -> None:
        # Lightning saved top-k (and then last) in this step when _last_global_step_saved moved to it
        if due and self.save_last and self._last_global_step_saved != trainer.global_step:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
