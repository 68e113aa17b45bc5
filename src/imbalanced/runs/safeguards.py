"""Callbacks that keep a run from being lost or silently wrong.

- `NonFiniteLossGuard`: stops at the first non-finite training loss, before the optimizer step,
  and at non-finite weights (a step that overflowed them) before the epoch's validation and
  checkpoints, so no NaN model is ever checkpointed; it names epoch, batch and the likely cause.
- `GracefulInterrupt`: on SIGINT (Ctrl-C) or SIGTERM finishes the current batch, saves
  `checkpoints/interrupted.ckpt` and stops with `TrainingInterrupted` (exit code 130 / 143).
  The checkpoint records how many batches of the epoch were done; on resume the training sampler
  skips them, so a mid-epoch resume sees exactly the batches the uninterrupted run would have seen.
  During the validation of an epoch it stops at once (the epoch's last.ckpt is the resume point).
- `stop_on_signals`: everywhere else (data setup, testing, refit, eval, predict) SIGINT / SIGTERM
  stop the task at once with the same exception; every output is written atomically, so what was
  saved before stays loadable.
- `ResumeCheckpoints`: resuming into a new run directory copies the old run's best checkpoint(s)
  there and points ModelCheckpoint's state at the copies, so the best-so-far score and file carry
  over (Lightning would otherwise forget the best score when the directory changes). Each copy is
  written under a temporary name, checked byte for byte against the original, then renamed.
"""

from __future__ import annotations

import logging
import math
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from imbalanced.errors import NonFiniteLossError, TrainingInterrupted
from imbalanced.runs.atomic_writes import copy_verified

log = logging.getLogger(__name__)


def _any_rank(trainer: L.Trainer, flag: bool) -> bool:
    """True if `flag` is true on any rank (one tiny all-reduce under DDP, free otherwise)."""
    if trainer.world_size <= 1:
        return flag
    return bool(trainer.strategy.reduce_boolean_decision(flag, all=False))


def non_finite_model_error(trainer: L.Trainer, pl_module: L.LightningModule, what: str) -> NonFiniteLossError:
    """`what` happened after optimizer steps whose losses were finite (the steps overflowed)."""
    lr = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else float("nan")
    largest = max((float(p.detach().abs().max()) for p in pl_module.parameters()), default=0.0)
    return NonFiniteLossError(
        f"{what} at epoch {trainer.current_epoch} (global step {trainer.global_step}) although the "
        f"training loss was finite; training stopped before any checkpoint of this state was saved. "
        f"Likely cause: the weights grew to |w|={largest:.3g}: the learning rate optimizer.lr={lr:g} "
        "is too high (try 10x lower)"
    )


def _is_finite(loss: torch.Tensor) -> bool:
    """One host read of a scalar loss (a sync on a GPU, as any check before the step must be);
    `math.isfinite(item())` costs a tenth of `isfinite(...).all()` inside a training step on a CPU."""
    if loss.numel() == 1:
        return math.isfinite(loss.item())
    return bool(torch.isfinite(loss).all())


def _all_finite(tensors: list[torch.Tensor]) -> bool:
    """Whether every value is finite, with one host read. min and max propagate NaN and show an
    inf, so they answer the same as `isfinite(t).all()` without its full-size boolean tensor (a
    few ms per epoch for an embedding table of millions of weights)."""
    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for tensor in tensors:
        if tensor.numel():
            by_dtype.setdefault(tensor.dtype, []).extend(torch.aminmax(tensor.detach()))
    if not by_dtype:
        return True
    finite = [torch.isfinite(torch.stack(values)).all() for values in by_dtype.values()]
    return bool(torch.stack(finite).all())


class NonFiniteLossGuard(Callback):
    """Raise NonFiniteLossError when the training loss is NaN or infinite."""

    def __init__(self) -> None:
        self._batch: Any = None
        self._weights_checked_at: int | None = None  # global step of the last weight check

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._batch = batch  # a reference only, for the diagnosis below

    def on_before_backward(
        self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor
    ) -> None:
        if _any_rank(trainer, not _is_finite(loss.detach())):
            value = loss.detach().float().item()
            raise NonFiniteLossError(
                f"training loss is {value} at epoch {trainer.current_epoch}, batch "
                f"{trainer.fit_loop.epoch_loop.batch_idx} (global step {trainer.global_step}); "
                f"training stopped before this optimizer step and no checkpoint of this state was "
                f"saved. Likely cause: {self._diagnose(trainer, pl_module)}"
            )

    # A finite loss can still give an optimizer step that overflows the weights; the next step's loss
    # would be caught, but not when that step was the epoch's last: check the weights (once per
    # epoch) before validation and before the epoch-end checkpoints are written.
    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == "fit" and not trainer.sanity_checking:
            self._check_weights(trainer, pl_module)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._check_weights(trainer, pl_module)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._weights_checked_at = None

    def _check_weights(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # validation does not change the weights: the epoch end after it needs no second pass over them
        if self._weights_checked_at == trainer.global_step:
            return
        if _any_rank(trainer, not _all_finite(list(pl_module.parameters()))):
            raise non_finite_model_error(trainer, pl_module, "the model weights became NaN/inf")
        self._weights_checked_at = trainer.global_step

    def _diagnose(self, trainer: L.Trainer, pl_module: L.LightningModule) -> str:
        lr = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else float("nan")
        inputs = self._batch[0] if isinstance(self._batch, (tuple, list)) else None
        targets = self._batch[1] if isinstance(self._batch, (tuple, list)) and len(self._batch) > 1 else None
        weights = getattr(pl_module, "class_weights", None)
        if (
            isinstance(targets, torch.Tensor)
            and isinstance(weights, torch.Tensor)
            and targets.numel()
            and float(weights[targets.to(weights.device)].sum()) == 0.0
        ):
            zero = sorted({int(t) for t in targets.unique().tolist()})
            names = getattr(pl_module, "class_names", None) or zero
            return (
                f"every sample of this batch has class weight 0 (classes "
                f"{[names[i] for i in zero]}), so a weighted mean is 0/0; give those classes a "
                "weight > 0 (class_weights.weights) or drop them from the data"
            )
        if isinstance(inputs, torch.Tensor) and not bool(torch.isfinite(inputs).all()):
            return "bad data: this batch has NaN/inf input values; clean the input or impute missing values"
        if any(not bool(torch.isfinite(p).all()) for p in pl_module.parameters()):
            return (
                f"the weights diverged in earlier steps: the learning rate optimizer.lr={lr:g} "
                "is likely too high (try 10x lower)"
            )
        largest = max((float(p.detach().abs().max()) for p in pl_module.parameters()), default=0.0)
        if trainer.global_step > 0 and largest > 1e4:
            return (
                f"the weights grew to |w|={largest:.3g} in {trainer.global_step} step(s): the "
                f"learning rate optimizer.lr={lr:g} is likely too high (try 10x lower)"
            )
        weights = getattr(pl_module, "class_weights", None)
        if isinstance(weights, torch.Tensor) and weights.numel():
            low, high = float(weights.min()), float(weights.max())
            if not math.isfinite(high) or (low > 0 and high / low > 1e6) or high > 1e6:
                return (
                    f"extreme class weights (min {low:g}, max {high:g}); use a milder class_weights strategy"
                )
        return (
            f"the learning rate optimizer.lr={lr:g} may be too high, or the class weights "
            "too extreme; the inputs of this batch are finite"
        )


def _exit_code(signum: int) -> int:
    return 128 + int(signum)  # the shell's convention: 130 for SIGINT, 143 for SIGTERM


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGINT / SIGTERM raise `TrainingInterrupted` at once while the task runs (Python's default
    SIGTERM would kill the process without a word; Lightning's only sets a flag that its training
    loop reads, so a long setup, validation or test ran on). A second Ctrl-C aborts at once."""
    received: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        if received:  # already stopping: a second Ctrl-C aborts, a second SIGTERM waits
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            return
        received.append(signum)
        raise TrainingInterrupted(
            f"stopped by {signal.Signals(signum).name}; every file written so far is complete "
            "(outputs and checkpoints are written atomically); a training run resumes from its "
            "checkpoints/last.ckpt when one was saved: python train.py ckpt_path=RUN/checkpoints/last.ckpt",
            exit_code=_exit_code(signum),
        )

    previous: dict[int, Any] = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[signum] = signal.signal(signum, handler)
        except ValueError:  # not the main thread: leave signals to the caller
            pass
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


class GracefulInterrupt(Callback):
    """Turn SIGINT/SIGTERM during training into a checkpoint plus a clean stop."""

    def __init__(self, dirpath: str, filename: str = "interrupted.ckpt") -> None:
        self.path = Path(dirpath) / filename
        self._requested: int | None = None
        self._previous: dict[int, Any] = {}
        self._skip: dict[str, int] | None = None
        self._position: dict[str, int] = {"epoch": -1, "batches_done": 0}
        self._trainer: L.Trainer | None = None

    # ---- signals ---------------------------------------------------------------------------
    def _handler(self, signum: int, frame: Any) -> None:
        if self._requested is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C stops at once
        self._requested = signum
        trainer = self._trainer
        if trainer is not None and (trainer.validating or trainer.sanity_checking):
            raise self._stopped_in_validation(trainer)  # a validation can be long: no batch to finish
        log.warning(
            "received %s: saving a checkpoint after this batch (Ctrl-C again to abort now)",
            signal.Signals(signum).name,
        )

    def _stopped_in_validation(self, trainer: L.Trainer) -> TrainingInterrupted:
        """Stop now: the end-of-epoch last.ckpt (written before each validation's epoch) resumes."""
        signum = self._requested or signal.SIGTERM
        last = getattr(trainer.checkpoint_callback, "last_model_path", "") or ""
        saved = (
            (
                f"the last checkpoint saved is {last}; resume with: python train.py ckpt_path={last} "
                "[same overrides]"
            )
            if last and Path(last).is_file()
            else "no checkpoint was saved yet"
        )
        return TrainingInterrupted(
            f"training interrupted by {signal.Signals(signum).name} during the validation of epoch "
            f"{trainer.current_epoch}; {saved}",
            exit_code=_exit_code(signum),
        )

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._trainer is not None and self._requested is not None:  # asked between batch and validation
            raise self._stopped_in_validation(trainer)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # The template's datamodules take the skip before Lightning builds the train loader (a
        # DataLoader with workers draws its first indices when its iterator is created, before
        # on_train_start); other datamodules get it on their sampler at on_train_start.
        skip_train_batches = getattr(trainer.datamodule, "skip_train_batches", None)
        if self._skip and callable(skip_train_batches):
            skip_train_batches(self._skip["epoch"], self._skip["batches_done"])
            log.info("resuming epoch %d after batch %d", self._skip["epoch"], self._skip["batches_done"] - 1)
            self._skip = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning registers its own SIGTERM handler just before this hook; ours replaces it
        # during training and the previous handlers come back at teardown.
        self._requested = None
        self._trainer = trainer
        self._skip_done_batches(trainer)
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[signum] = signal.signal(signum, self._handler)
            except ValueError:  # not the main thread: leave signals to the caller
                pass

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # before Lightning's teardown puts back the handlers it found (the teardown hooks run after
        # it, and restoring there left Lightning's handler of a finished trainer installed)
        self._restore_handlers()

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._restore_handlers()

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        self._restore_handlers()  # Lightning skips the teardown hooks when a run raises

    def _restore_handlers(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}
        self._trainer = None

    # ---- stop after a finished batch ------------------------------------------------------
    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._position = {"epoch": trainer.current_epoch, "batches_done": batch_idx + 1}
        if not _any_rank(trainer, self._requested is not None):
            return
        trainer.save_checkpoint(self.path)
        name = signal.Signals(self._requested or signal.SIGTERM).name
        raise TrainingInterrupted(
            f"training interrupted by {name} at epoch {trainer.current_epoch}, batch {batch_idx}; "
            f"saved {self.path}; resume with: python train.py ckpt_path={self.path} [same overrides]",
            exit_code=130 if self._requested == signal.SIGINT else 143,
        )

    def state_dict(self) -> dict[str, Any]:
        return dict(self._position)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._skip = dict(state_dict) if state_dict.get("batches_done") else None

    def _skip_done_batches(self, trainer: L.Trainer) -> None:
        # (Lightning skips on_train_epoch_start when it restarts mid-epoch, so this runs at train start)
        skip, self._skip = self._skip, None
        if not skip or skip["epoch"] != trainer.current_epoch:
            return
        if not 0 < skip["batches_done"] < trainer.num_training_batches:
            return  # the checkpoint was taken at an epoch boundary
        sampler = getattr(trainer.train_dataloader, "sampler", None)
        if hasattr(sampler, "skip_batches"):
            sampler.skip_batches = int(skip["batches_done"])
            log.info("resuming epoch %d after batch %d", trainer.current_epoch, skip["batches_done"] - 1)


class ResumeCheckpoints(Callback):
    """Carry ModelCheckpoint's best-so-far over when a run resumes into a new directory."""

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        states = checkpoint.get("callbacks", {})
        for callback in trainer.checkpoint_callbacks:
            if not isinstance(callback, ModelCheckpoint) or callback.dirpath is None:
                continue
            state = states.get(callback.state_key)
            if not state or not state.get("dirpath"):
                continue
            old, new = Path(state["dirpath"]), Path(callback.dirpath)
            if old.resolve() == new.resolve() or not old.is_dir():
                continue
            if trainer.is_global_zero:
                new.mkdir(parents=True, exist_ok=True)
            moved: dict[str, str] = {}
            for path in state.get("best_k_models", {}):
                source = Path(path)
                target = new / source.name
                if source.is_file():
                    if trainer.is_global_zero:  # atomic, byte-verified; a bad file at target is replaced
                        copy_verified(source, target)
                    moved[str(source)] = str(target)
            trainer.strategy.barrier("resume_checkpoints")
            state["best_k_models"] = {moved.get(k, k): v for k, v in state.get("best_k_models", {}).items()}
            for key in ("best_model_path", "kth_best_model_path"):
                if state.get(key):
                    state[key] = moved.get(state[key], state[key])
            if state.get("last_model_path"):
                state["last_model_path"] = str(new / Path(state["last_model_path"]).name)
            state["dirpath"] = str(callback.dirpath)
            log.info("resumed from %s: copied best checkpoint(s) %s into %s", old, list(moved.values()), new)
