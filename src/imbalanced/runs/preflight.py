"""Every check of a training run, in the order the run can make them: the settings and the run
directory before any data is read, the data once it is split, the model once it is built."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from imbalanced.data.test_overlap import check_test_is_not_train
from imbalanced.longtail.rare_event import RareEventConfig, check_rare_event_data, rare_event_settings
from imbalanced.runs.budget import check_budget
from imbalanced.runs.config_checks import check_config
from imbalanced.runs.refit import check_not_refit_checkpoint, check_refit_setting, refit_enabled
from imbalanced.runs.resume import (
    check_restored_settings,
    check_resume,
    check_run_dir,
    keep_earlier_logs,
    load_checkpoint,
)
from imbalanced.value_checks import check_choice


@dataclass
class Preflight:
    """What the checks before the data found: the run's rare-event settings and, when resuming,
    the checkpoint's saved hyperparameters (its weights are loaded by Lightning's `fit`)."""

    cfg: DictConfig
    rare_event: RareEventConfig
    checkpoint: dict[str, Any] | None

    def check_data(self, datamodule: Any) -> bool:
        """Checks that need the split data; returns whether the run refits on training + validation.
        A resumed run keeps the earlier run's logs beside the new ones."""
        if self.checkpoint is not None:
            check_resume(self.cfg, datamodule, self.checkpoint)
            self.checkpoint = {"hyper_parameters": self.checkpoint.get("hyper_parameters") or {}}
            keep_earlier_logs(Path(self.cfg.paths.output_dir))
        check_rare_event_data(self.rare_event, datamodule)  # e.g. a binary-only rule on 5 classes
        return refit_enabled(self.cfg, datamodule)  # `true` on data that cannot merge: an error now

    def check_model(self, model: Any) -> None:
        """A resumed run must rebuild the model it saved (its settings, as the checkpoint has them)."""
        if self.checkpoint is not None:
            check_restored_settings(self.cfg.ckpt_path, self.checkpoint["hyper_parameters"], model.hparams)


def check_before_data(cfg: DictConfig) -> Preflight:
    """Every setting, the run directory and the checkpoint to resume from, before any data is read."""
    check_config(cfg)
    check_budget(cfg)
    check_choice("test_checkpoint", cfg.get("test_checkpoint", "last"), ("last", "best"))
    check_refit_setting(cfg.get("refit_with_validation", "auto"))
    rare_event = rare_event_settings(cfg)  # decision.* / calibration / loss=bce
    check_run_dir(cfg)
    check_test_is_not_train(
        OmegaConf.to_container(cfg.data, resolve=True), bool(cfg.get("allow_test_overlap"))
    )
    checkpoint = load_checkpoint(cfg.ckpt_path) if cfg.get("ckpt_path") else None
    if checkpoint is not None:
        check_not_refit_checkpoint(cfg.ckpt_path, checkpoint)
    return Preflight(cfg, rare_event, checkpoint)
