"""The training task behind `train.py`: a plain function of the composed config."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from imbalanced.checks import check_choice
from imbalanced.data.test_overlap import check_test_is_not_train
from imbalanced.errors import UserError, unwrap_user_errors
from imbalanced.imbalance.rare_event import check_rare_event_data, configure_prediction, rare_event_settings
from imbalanced.imbalance.techniques import (
    ClassWeightChoice,
    choose_class_weights,
    posthoc_tau,
    technique_callbacks,
)
from imbalanced.reporting.end_of_run import finish_run
from imbalanced.reporting.run_files import metrics_report, write_json
from imbalanced.runtime import apply_runtime_settings
from imbalanced.tasks.budget import apply_budget, check_budget
from imbalanced.tasks.config_checks import check_config
from imbalanced.tasks.data_to_model import build_model
from imbalanced.tasks.refit import (
    check_not_refit_checkpoint,
    check_refit_setting,
    refit_enabled,
    refit_with_validation,
    trained_epochs,
)
from imbalanced.tasks.resume import (
    check_restored_settings,
    check_resume,
    check_run_dir,
    keep_earlier_logs,
    load_checkpoint,
)

log = logging.getLogger(__name__)


def build_datamodule(cfg: DictConfig, weights: ClassWeightChoice | None = None) -> Any:
    """The datamodule of `cfg.data` with the class-weight strategy `weights` (default: chosen from
    `cfg`, `class_weights=auto` resolved from the loss)."""
    sampler = OmegaConf.to_container(cfg.sampler, resolve=True) if cfg.get("sampler") else None
    # the class-weight config reaches the datamodule as a plain dict (saved, reported), so it is
    # passed to the partial rather than to instantiate (which would build its `_target_`)
    with unwrap_user_errors():  # a setting the constructor refused: its one-line error
        weights = weights or choose_class_weights(cfg)
        datamodule = instantiate(cfg.data, _partial_=True)
        return datamodule(class_weights=weights.config, sampler=sampler)


def build_callbacks(cfg: DictConfig) -> list[L.Callback]:
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    return callbacks + technique_callbacks(cfg)  # DRW


def build_trainer(cfg: DictConfig) -> L.Trainer:
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values() if c is not None]
    return instantiate(cfg.trainer, callbacks=build_callbacks(cfg), logger=loggers or False)


def checkpoint_to_test(cfg: DictConfig, trainer: L.Trainer) -> str | None:
    """What `trainer.validate`/`test` load: "last" (the default), "best" (by the checkpoint callback's
    monitor), or None (the model in memory) when no such checkpoint was written.

    The end-of-training model wins by default: on a small long-tailed validation split (1-2 rows of the
    rarest class) the best score saturates early and picks an undertrained model (benchmarks/quality.py).
    Each checkpoint carries the decision/calibration fitted on validation for its own weights.
    """
    choice = cfg.get("test_checkpoint", "last")
    callback = trainer.checkpoint_callback
    if callback is None:
        return None
    if choice == "best":
        return "best" if callback.best_model_path else None
    return callback.last_model_path or None


def checkpoint_file(trainer: L.Trainer, checkpoint: str | None) -> str | None:
    """The file behind `checkpoint_to_test`'s answer ("best" is the checkpoint callback's best)."""
    return trainer.checkpoint_callback.best_model_path if checkpoint == "best" else checkpoint


def tested_checkpoint_name(checkpoint_file: str | None, output_dir: Path) -> str | None:
    """The tested checkpoint as metrics.json names it: relative to the run directory (None: the model
    in memory, e.g. debug=fdr writes no checkpoint)."""
    if not checkpoint_file:
        return None
    path = Path(checkpoint_file)
    return str(path.relative_to(output_dir)) if path.is_relative_to(output_dir) else str(path)


@rank_zero_only
def _write(path: Path, content: dict[str, Any], what: str = "wrote") -> None:
    write_json(path, content)
    log.info("%s %s", what, path)


def train(cfg: DictConfig) -> dict[str, Any]:
    """Check the config, set up data, train, then validate and test the selected checkpoint.

    Returns the content of metrics.json.
    """
    check_config(cfg)
    check_budget(cfg)
    check_choice("test_checkpoint", cfg.get("test_checkpoint", "last"), ("last", "best"))
    check_refit_setting(cfg.get("refit_with_validation", "auto"))
    rare_event = rare_event_settings(cfg)  # decision.* / calibration / loss=bce, before any data
    apply_runtime_settings(cfg)
    check_run_dir(cfg)
    data = OmegaConf.to_container(cfg.data, resolve=True)
    check_test_is_not_train(data, bool(cfg.get("allow_test_overlap")))  # before any data is read
    checkpoint = load_checkpoint(cfg.ckpt_path) if cfg.get("ckpt_path") else None
    if checkpoint is not None:
        check_not_refit_checkpoint(cfg.ckpt_path, checkpoint)
    L.seed_everything(cfg.seed, workers=True)
    output_dir = Path(cfg.paths.output_dir)

    weight_choice = choose_class_weights(cfg)  # class_weights=auto: from the loss's declaration
    log.info("%s", weight_choice.describe())
    datamodule = build_datamodule(cfg, weight_choice)
    datamodule.setup("fit")  # data problems and bad weights surface here, before training
    saved_hparams = None
    if checkpoint is not None:
        check_resume(cfg, datamodule, checkpoint)
        saved_hparams = checkpoint.get("hyper_parameters") or {}
        del checkpoint
        keep_earlier_logs(output_dir)
    check_rare_event_data(rare_event, datamodule)  # e.g. a binary-only rule on 5 classes
    refit = refit_enabled(cfg, datamodule)  # `true` on data that cannot merge: an error before training
    weight_report = {**datamodule.class_statistics.report(), **weight_choice.report()}  # what auto chose, why
    _write(output_dir / "class_weights.json", weight_report)
    apply_budget(cfg, datamodule, refit)  # trainer.max_epochs from the training split's size when null

    model = build_model(cfg, datamodule)
    if saved_hparams is not None:
        check_restored_settings(cfg.ckpt_path, saved_hparams, model.hparams)
    model.posthoc_tau = posthoc_tau(cfg)  # post-hoc logit adjustment in validation (best ckpt) and test
    configure_prediction(model, rare_event)  # decision rule and calibration, fitted on validation
    trainer = build_trainer(cfg)
    # weights_only: a checkpoint is data, never code (docs/robustness.md)
    trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"), weights_only=True)

    best = checkpoint_to_test(cfg, trainer)
    results = {
        "val": trainer.validate(
            model, datamodule=datamodule, ckpt_path=best, verbose=False, weights_only=True
        )[0]
    }
    unreachable = model.prediction_policy.unreachable_message()
    if unreachable:  # the best checkpoint is kept; eval.py decision.threshold=... can still use it
        raise UserError(unreachable)
    refit_report = None
    if refit:  # a fresh model on train + validation, tested instead
        epochs = trained_epochs(trainer, checkpoint_file(trainer, best))
        model, best, refit_report = refit_with_validation(
            cfg, datamodule, model, epochs, build_callbacks(cfg)
        )
        merged = datamodule.class_statistics.report()  # the training split's stay the top-level keys
        weight_report["refit_with_validation"] = {"counts": merged["counts"], "weights": merged["weights"]}
        _write(output_dir / "class_weights.json", weight_report, "added the refit's counts and weights to")
    results["test"] = trainer.test(
        model, datamodule=datamodule, ckpt_path=best, verbose=False, weights_only=True
    )[0]
    statistics = datamodule.class_statistics
    report = metrics_report(results, statistics.class_names, class_counts=statistics.counts)
    if refit_report is not None:
        report["refit_with_validation"] = refit_report
    report["tested_checkpoint"] = tested_checkpoint_name(checkpoint_file(trainer, best), output_dir)
    report.update(model.prediction_policy.report(model.class_names, model.class_counts, model.posthoc_tau))
    _write(output_dir / "metrics.json", report)
    finish_run(trainer, model, report, output_dir, statistics.strategy)  # per-class summary, plots
    return report
