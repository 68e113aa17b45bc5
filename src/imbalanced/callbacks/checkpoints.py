"""`ModelCheckpoint` whose `last.ckpt` is the latest epoch, and which writes each moment once.

Two changes to Lightning's class:

- `last.ckpt` is the model at the end of the latest epoch. Lightning 2.6 writes it only in a step
  that also wrote a top-k checkpoint (`ModelCheckpoint.on_validation_end`: "Only save last
  checkpoint if a checkpoint was actually saved in this step"), so with `monitor` and
  `save_top_k=1` a run tested on "last", or resumed from it, silently went back to the best epoch.
- An epoch that improves the best model would write the same weights and optimizer state twice
  (`best-epochNNN.ckpt`, then `last.ckpt`): serializing and fsyncing them costs as much as a short
  epoch. The second name is a hard link to the first file instead (made atomically beside it), so
  both load as before. A later `last.ckpt` is a new file that replaces the name (atomic rename),
  never the shared one in place, and removing an old best removes its name only. Where no hard link
  can be made the file is copied (a file system without them) or written again (a remote path, a
  strategy that writes its own shards, a checkpoint writer other than runs/checkpoint_io.py's).

Under `fast_dev_run` (`debug=fdr`) nothing is written: Lightning's `on_train_end` would still write
`last.ckpt` there.
"""

from __future__ import annotations

from typing import Any
from weakref import proxy

import lightning as L
from lightning.fabric.utilities.cloud_io import _is_local_file_protocol
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import Logger, TensorBoardLogger
from lightning.pytorch.strategies import Strategy
from typing_extensions import override

from imbalanced.runs.checkpoint_io import AtomicCheckpointIO


class EveryEpochLastCheckpoint(ModelCheckpoint):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._state_key: tuple[tuple[Any, ...], str] | None = None
        super().__init__(*args, **kwargs)
        # the latest file this fit wrote, and the training moment (epoch, step) it holds
        self._written: tuple[tuple[int, int], str] | None = None

    @override
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        self._written = None  # a later fit with this callback (a refit) counts its steps from 0 again

    @property
    @override
    def state_key(self) -> str:
        # Lightning formats this key for every callback hook it dispatches (six per training step);
        # it changes only with the settings it is made of
        settings = (
            self.monitor,
            self.mode,
            self._every_n_train_steps,
            self._every_n_epochs,
            self._train_time_interval,
        )
        if self._state_key is None or self._state_key[0] != settings:
            self._state_key = (settings, super().state_key)
        return self._state_key[1]

    @override
    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self._every_n_train_steps >= 1 or self._train_time_interval is not None:
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        # else Lightning's hook only works out that no step or time trigger is set

    @override
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if not self._should_skip_saving_checkpoint(trainer) and self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_missing(trainer)

    @override
    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_skip_saving_checkpoint(trainer) and not self._should_save_on_train_epoch_end(
            trainer
        ):
            self._save_last_if_missing(trainer)

    @override
    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.fast_dev_run:  # Lightning checks fast_dev_run in every save but this one
            return
        self._save_last_if_missing(trainer)  # a fit stopped between epochs (max_steps)

    def _save_last_if_missing(self, trainer: L.Trainer) -> None:
        # Lightning writes last.ckpt right after any top-k file of a step, so a step with a saved file
        # already has its last.ckpt
        if self.save_last and self._last_global_step_saved != trainer.global_step:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    @override
    def _save_checkpoint(self, trainer: L.Trainer, filepath: str) -> None:
        # Lightning's method, with the link, and the files written before a logger may read them
        moment = (trainer.current_epoch, trainer.global_step)
        if not self._link_to_written(trainer, moment, filepath):
            trainer.save_checkpoint(filepath, self.save_weights_only)
            self._written = (moment, filepath)
        self._last_global_step_saved = trainer.global_step
        self._last_checkpoint_saved = filepath
        if trainer.is_global_zero:
            writer = trainer.strategy.checkpoint_io
            if isinstance(writer, AtomicCheckpointIO) and any(map(_reads_checkpoints, trainer.loggers)):
                writer.finish_writes()
            for logger in trainer.loggers:
                logger.after_save_checkpoint(proxy(self))

    def _link_to_written(self, trainer: L.Trainer, moment: tuple[int, int], filepath: str) -> bool:
        """Make `filepath` a second name of the file written at this moment; False: write it."""
        if self._written is None or self._written[0] != moment or self._written[1] == filepath:
            return False
        source = self._written[1]
        # one file written by rank 0 (single device, DDP) through the run's writer, which links after
        # its pending writes; FSDP and DeepSpeed write their own shards
        writer = trainer.strategy.checkpoint_io
        single_file = type(trainer.strategy).save_checkpoint is Strategy.save_checkpoint
        local = _is_local_file_protocol(source) and _is_local_file_protocol(filepath)
        if not (single_file and local and isinstance(writer, AtomicCheckpointIO)):
            return False
        if trainer.is_global_zero:
            writer.link_checkpoint(source, filepath)
        return True


def _reads_checkpoints(logger: Logger) -> bool:
    """MLflow's and W&B's loggers upload the checkpoint files they are told of (`log_model`); the
    CSV and TensorBoard loggers do nothing then."""
    return type(logger).after_save_checkpoint not in _IGNORE_SAVES


_IGNORE_SAVES = (Logger.after_save_checkpoint, TensorBoardLogger.after_save_checkpoint)
