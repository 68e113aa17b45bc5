"""The training task behind `train.py`: a plain function of the composed config, read top to bottom."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig

from imbalanced.errors import UserError
from imbalanced.from_config import build_callbacks, build_datamodule, build_model, build_trainer
from imbalanced.longtail.rare_event import configure_prediction
from imbalanced.longtail.techniques import choose_class_weights, posthoc_tau
from imbalanced.reporting.end_of_run import finish_run
from imbalanced.reporting.run_files import metrics_report, write_json
from imbalanced.runs.budget import apply_budget
from imbalanced.runs.preflight import check_before_data
from imbalanced.runs.refit import refit_with_validation, trained_epochs
from imbalanced.runs.runtime import apply_runtime_settings

log = logging.getLogger(__name__)


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
    preflight = check_before_data(cfg)  # settings, run directory, the checkpoint to resume from
    apply_runtime_settings(cfg)
    L.seed_everything(cfg.seed, workers=True)
    output_dir = Path(cfg.paths.output_dir)

    # the data: split, and class counts and weights from the training split alone
    weight_choice = choose_class_weights(cfg)  # class_weights=auto: from the loss's declaration
    log.info("%s", weight_choice.describe())
    datamodule = build_datamodule(cfg, weight_choice)
    datamodule.setup("fit")  # data problems and bad weights surface here, before training
    refit = preflight.check_data(datamodule)
    weight_report = {**datamodule.class_statistics.report(), **weight_choice.report()}  # what auto chose, why
    _write(output_dir / "class_weights.json", weight_report)
    apply_budget(cfg, datamodule, refit)  # trainer.max_epochs from the training split's size when null

    # the model, its loss weighted by the buffers the data filled, and its prediction policy
    model = build_model(cfg, datamodule)
    preflight.check_model(model)
    model.posthoc_tau = posthoc_tau(cfg)  # post-hoc logit adjustment in validation (best ckpt) and test
    configure_prediction(model, preflight.rare_event)  # decision rule and calibration, fitted on validation

    # train and validate; weights_only: a checkpoint is data, never code (docs/robustness.md)
    trainer = build_trainer(cfg)
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

    # test, then metrics.json, the per-class table and the plots
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
