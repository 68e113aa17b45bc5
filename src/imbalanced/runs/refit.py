"""`refit_with_validation=true`: after training, a fresh model trains on training + validation rows.

The first run chooses what validation is needed for: the length of training (the epochs of the
checkpoint `test_checkpoint` picks), the decision threshold and the calibration. A stratified
validation split holds out 15% of every class, the rare ones included; the refit model learns from
those rows too (what scikit-learn users do after a search), for the same number of epochs, and keeps
the first model's decision and calibration (validation rows are training rows for it now, so they
cannot be fitted again without bias). It is saved as `checkpoints/refit.ckpt` and is what the test
split scores. Only datamodules that hold their splits in memory (`can_refit`) can merge them.

An interrupted refit is not resumed: resuming the run (`ckpt_path=.../last.ckpt`) finds the first
training complete and trains the refit model again from the start.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback, Checkpoint, EarlyStopping
from omegaconf import DictConfig

from imbalanced.callbacks.progress import RunProgressBar
from imbalanced.errors import UserError
from imbalanced.from_config import build_model
from imbalanced.runs.safe_loading import read_checkpoint
from imbalanced.runs.safeguards import GracefulInterrupt, ResumeCheckpoints

log = logging.getLogger(__name__)

REFIT_FILE = "refit.ckpt"
REFIT_KEY = "refit_with_validation"  # in the refit checkpoint: it cannot be resumed


def check_refit_setting(value: object) -> None:
    """Before any data is loaded."""
    if not (value == "auto" or isinstance(value, bool)):
        raise UserError(f"refit_with_validation={value!r} is invalid; allowed: auto, true or false")


def refit_enabled(cfg: DictConfig, datamodule: Any) -> bool:
    """Whether this run refits: `auto` asks the set-up datamodule (`refit_by_default`); `true` needs
    a datamodule that can merge its splits (`can_refit`), else a clear error."""
    setting = cfg.get("refit_with_validation", "auto")
    if setting == "auto":
        return datamodule.can_refit and bool(datamodule.refit_by_default)
    if setting and not datamodule.can_refit:
        raise UserError(
            f"refit_with_validation=true needs a datamodule that can merge its validation split into "
            f"training (one whose splits are in memory); {type(datamodule).__name__} cannot. "
            "allowed: refit_with_validation=false"
        )
    return bool(setting)


def check_not_refit_checkpoint(path: str | Path, checkpoint: dict[str, Any]) -> None:
    """A refit checkpoint is a finished model, not a training state to resume."""
    if REFIT_KEY in checkpoint:
        raise UserError(
            f"ckpt_path={path} is the model refit on training + validation, which cannot be resumed; "
            f"allowed: the first training's checkpoint ({Path(path).parent / 'last.ckpt'}), or use "
            "this one with eval.py / predict.py"
        )


def trained_epochs(trainer: L.Trainer, checkpoint_file: str | None) -> int:
    """Epochs behind the tested model: its checkpoint's, else the trainer's (no checkpoint written)."""
    if checkpoint_file:
        return int(read_checkpoint(checkpoint_file)["epoch"]) + 1
    return max(int(trainer.current_epoch), 1)


class _MarkRefit(Callback):
    def __init__(self, epochs: int, train_rows: int) -> None:
        self.info = {"epochs": epochs, "train_rows": train_rows}

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: Any, checkpoint: dict[str, Any]) -> None:
        checkpoint[REFIT_KEY] = dict(self.info)


def _without_validation_and_resume(callbacks: list[Callback]) -> list[Callback]:
    """The run's callbacks without those about validation, checkpoints and resuming; DRW kept."""
    dropped = (Checkpoint, EarlyStopping, GracefulInterrupt, ResumeCheckpoints)
    return [c for c in callbacks if not isinstance(c, dropped)]


def refit_with_validation(
    cfg: DictConfig, datamodule: Any, first: Any, epochs: int, callbacks: list[Callback]
) -> tuple[Any, str | None, dict[str, int]]:
    """Train a fresh model on training + validation for `epochs`; (model, checkpoint path, report:
    its epochs and training rows).

    `first` is the tested model of the first training, its decision and calibration fitted on
    validation; the refit model takes them over. `callbacks` are fresh instances of the run's
    callbacks (train.build_callbacks). Its training is not logged (the loggers hold the
    first training's curves, step by step); the run's own trainer tests it, so the test metrics and
    plots reach the loggers as before.
    """
    datamodule.merge_validation_into_training()
    train_rows = int(datamodule.class_statistics.counts.sum())
    log.info(
        "refit_with_validation: a fresh model, %d epochs on %d training + validation rows", epochs, train_rows
    )
    L.seed_everything(cfg.seed, workers=True, verbose=False)  # the run's seed line said it once
    model = build_model(cfg, datamodule)
    model.posthoc_tau = first.posthoc_tau
    model.prediction_policy = copy.deepcopy(first.prediction_policy)
    mark = _MarkRefit(epochs, train_rows)
    for callback in callbacks:
        if isinstance(callback, RunProgressBar):
            callback.stage = "Refit epoch"  # the terminal tells the two trainings apart
    trainer = instantiate(
        cfg.trainer,
        max_epochs=epochs,
        max_steps=-1,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        callbacks=[*_without_validation_and_resume(callbacks), mark],
        logger=False,
        enable_checkpointing=False,
    )
    trainer.fit(model, datamodule=datamodule)
    if trainer.fast_dev_run:  # debug=fdr: nothing is saved
        return model, None, dict(mark.info)
    path = Path(cfg.paths.output_dir) / "checkpoints" / REFIT_FILE
    trainer.save_checkpoint(path, weights_only=False)  # every rank calls it; rank zero writes
    if trainer.is_global_zero:
        log.info("wrote %s", path)
    return model, str(path), dict(mark.info)
