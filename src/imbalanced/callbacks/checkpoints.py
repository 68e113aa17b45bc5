"""`ModelCheckpoint` whose files are written at most every `min_seconds_between_writes`.

Two changes to Lightning's class:

- `last.ckpt` is the model at the end of the latest written epoch. Lightning 2.6 writes it only in a
  step that also wrote a top-k checkpoint (`ModelCheckpoint.on_validation_end`: "Only save last
  checkpoint if a checkpoint was actually saved in this step"), so with `monitor` and
  `save_top_k=1` a run tested on "last", or resumed from it, silently went back to the best epoch.
- Writing a checkpoint (weights and optimizer state, serialized, fsynced, renamed) costs as much as
  a short epoch. At the end of an epoch the files are written only when the first epoch of the fit
  ends, when at least `min_seconds_between_writes` have passed since the last write, and when the
  fit ends (max_epochs, max_steps, early stopping). Between writes the top-k decisions are made
  every epoch as Lightning makes them; a new best model is held in memory (a CPU copy of its
  checkpoint) and written, and the file it replaces removed, at the next write, on an exception
  (Ctrl-C's `interrupted.ckpt` names it) and at the end of the fit. So a crash loses at most the
  epochs of the last `min_seconds_between_writes` seconds: the run resumes from `last.ckpt` and
  trains them again (`StepSeed` gives it the same dropout masks), with the best file and score
  that `last.ckpt` records. `0` writes every epoch. After Ctrl-C (or an error) the folder can hold
  two best files: the one `interrupted.ckpt` names and the older one `last.ckpt` names.

Deferring needs a strategy whose checkpoint is one file written by rank 0 (single device, DDP);
others (FSDP, DeepSpeed) write every epoch. Under `fast_dev_run` (`debug=fdr`) nothing is written:
Lightning's `on_train_end` would still write `last.ckpt` there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any
from weakref import proxy

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.strategies import Strategy
from lightning_utilities.core.apply_func import apply_to_collection
from typing_extensions import override

from imbalanced.value_checks import check_number

log = logging.getLogger(__name__)


class EveryEpochLastCheckpoint(ModelCheckpoint):
    def __init__(self, *args: Any, min_seconds_between_writes: float = 0.0, **kwargs: Any) -> None:
        self._state_key: tuple[tuple[Any, ...], str] | None = None
        super().__init__(*args, **kwargs)
        self.min_seconds_between_writes = check_number(
            "callbacks.model_checkpoint.min_seconds_between_writes", min_seconds_between_writes, low=0
        )
        self._held: dict[str, dict[str, Any] | None] = {}  # path -> checkpoint (None on ranks > 0)
        self._held_removals: list[str] = []  # files to remove once the held ones are written
        self._holding = False
        self._last_write: float | None = None  # monotonic time of the last write of this fit
        self._last_file_step: int | None = None  # global step of the last.ckpt written

    @override
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        self._last_write = None  # a fit's first epoch always writes: a disk problem shows at once

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
        due = not self._should_skip_saving_checkpoint(trainer) and self._should_save_on_train_epoch_end(
            trainer
        )
        self._epoch_end(trainer, due, lambda: ModelCheckpoint.on_train_epoch_end(self, trainer, pl_module))

    @override
    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        due = not self._should_skip_saving_checkpoint(trainer) and not self._should_save_on_train_epoch_end(
            trainer
        )
        self._epoch_end(trainer, due, lambda: ModelCheckpoint.on_validation_end(self, trainer, pl_module))

    @override
    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.fast_dev_run:  # Lightning checks fast_dev_run in every save but this one
            return
        self._write_held(trainer)
        if self.save_last and self._last_file_step != trainer.global_step:  # stopped between epochs
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    @override
    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        super().on_exception(trainer, pl_module, exception)
        # A held best is named by interrupted.ckpt (and by Lightning's save_on_exception file): write
        # it, and remove nothing, since last.ckpt, the other resume point, names the older best.
        try:
            self._write_held(trainer, barrier=False, remove=False)  # only this rank may be failing
        except Exception as error:  # the run's own exception is the one to report
            log.warning("could not write the held best checkpoint: %s", error)

    # ---- when to write --------------------------------------------------------------------------
    def _epoch_end(self, trainer: L.Trainer, due: bool, lightning_hook: Callable[[], None]) -> None:
        if not due:
            lightning_hook()
            return
        write = self._write_now(trainer)
        self._holding = not write
        try:
            lightning_hook()  # the top-k decisions; while holding, the files are kept in memory
        finally:
            self._holding = False
        if write:
            self._write_held(trainer)
            if self.save_last and self._last_file_step != trainer.global_step:
                self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
            self._last_write = time.monotonic()

    def _write_now(self, trainer: L.Trainer) -> bool:
        if not self._can_hold(trainer):
            return True
        elapsed = None if self._last_write is None else time.monotonic() - self._last_write
        write = elapsed is None or elapsed >= self.min_seconds_between_writes or _fit_ends(trainer)
        return bool(trainer.strategy.broadcast(write, src=0))  # the ranks' clocks differ: rank 0 decides

    def _can_hold(self, trainer: L.Trainer) -> bool:
        # a strategy with its own save_checkpoint may write shards on every rank: no copies held there
        return (
            self.min_seconds_between_writes > 0
            and type(trainer.strategy).save_checkpoint is Strategy.save_checkpoint
        )

    # ---- held files -----------------------------------------------------------------------------
    @override
    def _save_checkpoint(self, trainer: L.Trainer, filepath: str) -> None:
        if not self._holding:
            super()._save_checkpoint(trainer, filepath)
            return
        checkpoint = trainer._checkpoint_connector.dump_checkpoint(self.save_weights_only)
        # a CPU copy: training goes on updating the weights and optimizer state in place
        self._held[filepath] = (
            apply_to_collection(checkpoint, torch.Tensor, lambda t: t.detach().to("cpu", copy=True))
            if trainer.is_global_zero
            else None
        )
        self._last_global_step_saved = trainer.global_step
        self._last_checkpoint_saved = filepath

    @override
    def _save_last_checkpoint(self, trainer: L.Trainer, monitor_candidates: dict[str, torch.Tensor]) -> None:
        if self._holding:  # written from the live model at the next write
            return
        super()._save_last_checkpoint(trainer, monitor_candidates)
        self._last_file_step = trainer.global_step

    @override
    def _remove_checkpoint(self, trainer: L.Trainer, filepath: str) -> None:
        if filepath in self._held:  # superseded before it was ever written
            del self._held[filepath]
        elif self._holding or self._held:  # its successor is still in memory: keep the file till then
            self._held_removals.append(filepath)
        else:
            super()._remove_checkpoint(trainer, filepath)

    def _write_held(self, trainer: L.Trainer, barrier: bool = True, remove: bool = True) -> None:
        held, self._held = self._held, {}
        for filepath, checkpoint in held.items():
            trainer.strategy.save_checkpoint(checkpoint or {}, filepath)  # rank 0 writes
        if held and barrier:
            trainer.strategy.barrier("EveryEpochLastCheckpoint.write_held")
        removals, self._held_removals = self._held_removals, []
        for filepath in removals if remove else []:
            trainer.strategy.remove_checkpoint(filepath)
        if held and trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.after_save_checkpoint(proxy(self))


def _fit_ends(trainer: L.Trainer) -> bool:
    """This epoch is the fit's last (max_epochs, max_steps, or a callback asked to stop)."""
    max_epochs, max_steps = trainer.max_epochs, trainer.max_steps
    return (
        trainer.should_stop
        or (max_epochs is not None and max_epochs >= 0 and trainer.current_epoch + 1 >= max_epochs)
        or (max_steps is not None and max_steps >= 0 and trainer.global_step >= max_steps)
    )
