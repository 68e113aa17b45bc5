"""The task behind `eval.py`: test a checkpoint on its own test split or on a file or folder."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from imbalanced.callbacks.per_class_report import PerClassTestStats
from imbalanced.data.fingerprint import changed_splits, saved_fingerprint
from imbalanced.data.test_overlap import check_test_is_not_train
from imbalanced.errors import UserError
from imbalanced.longtail.rare_event import apply_prediction_overrides, refit_decision
from imbalanced.reporting.end_of_run import show_results
from imbalanced.reporting.run_files import metrics_report, write_json
from imbalanced.runs.config_checks import check_config
from imbalanced.runs.safe_loading import trusted_targets
from imbalanced.tasks.from_checkpoint import (
    build_single_device_trainer,
    classifier_of,
    data_overrides,
    read_raw_inputs,
    read_trusted_checkpoint,
    rebuild_datamodule,
    saved_data_config,
    set_posthoc_tau,
    validation_logits,
)

log = logging.getLogger(__name__)


def check_same_data(cfg: DictConfig, datamodule: Any, saved: dict[str, Any] | None) -> None:
    """The rebuilt splits must be the training run's (`saved`, the checkpoint's fingerprint:
    data/fingerprint.py), else the "test" rows may include rows the model trained on;
    `allow_changed_data=true` evaluates anyway (with a warning)."""
    now = datamodule.contract().fingerprint
    if saved is None or now is None:
        log.warning("the checkpoint holds no data fingerprint: cannot check the data is unchanged")
        return
    # the test split alone decides: identical rows mean the model never trained on them
    changes = changed_splits(saved, now, names=("test",))
    if not changes:
        return
    message = (
        f"the data rebuilt from the checkpoint's data config differs from training: the "
        f"{', '.join(changes)} split changed, so the file changed since training and the rebuilt test "
        "split may hold rows the model trained on"
    )
    if cfg.get("allow_changed_data"):
        log.warning("%s (evaluating anyway: allow_changed_data=true)", message)
        return
    raise UserError(
        f"{message}; allowed: the unchanged file, a separate test file data.test_path=FILE, or "
        "allow_changed_data=true to evaluate anyway"
    )


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Write `metrics.json` (test/ keys) for `cfg.ckpt_path` into the run directory and return it.

    With `data.test_path=PATH` the file or folder is read by the checkpoint's datamodule class
    (`read_inputs`, data/contract.py) with the checkpoint's data config and input spec, its labels
    mapped to the checkpoint's classes; no training data is needed. Otherwise
    the training datamodule is rebuilt from the data config in the checkpoint (same files, same
    seed, same split) and its test split is used: the training run's test metrics, reproduced.
    """
    check_config(cfg)  # the same setting checks as train.py
    checkpoint = read_trusted_checkpoint(cfg.ckpt_path, trusted_targets(cfg))
    model = classifier_of(checkpoint, cfg.ckpt_path)
    trained_fingerprint = saved_fingerprint(checkpoint)
    del checkpoint  # the weights are in the model now
    set_posthoc_tau(model, cfg.get("posthoc_tau"))
    apply_prediction_overrides(model, cfg)  # decision.threshold=..., calibration=none
    refit_decision(model, cfg, lambda: validation_logits(model))  # decision.rule=... on its val split
    overrides = data_overrides(cfg.get("data"))
    config = {**saved_data_config(model), **overrides}
    test_path = overrides.get("test_path")
    check_test_is_not_train(config, bool(cfg.get("allow_test_overlap")), trained_on=saved_data_config(model))

    trainer = build_single_device_trainer(cfg, [PerClassTestStats()])  # per-class F1, as train.py reports
    if test_path:
        inputs = read_raw_inputs(model, test_path, "data.test_path", config, labelled=True)
        loader = inputs.loader(int(config.get("eval_batch_size") or 256), int(config.get("num_workers") or 0))
        results = trainer.test(model, dataloaders=loader, verbose=False)[0]
        num_samples, source = len(inputs), str(test_path)
    else:
        datamodule = rebuild_datamodule(model, overrides)
        check_same_data(cfg, datamodule, trained_fingerprint)
        results = trainer.test(model, datamodule=datamodule, verbose=False)[0]
        num_samples = len(datamodule.split_labels("test"))  # from the labels, no sample loaded
        source = "test split of the checkpoint's data config"

    report = metrics_report({"test": results}, model.class_names, class_counts=model.class_counts.tolist())
    report.update(model.prediction_policy.report(model.class_names, model.class_counts, model.posthoc_tau))
    report.update({"test/num_samples": num_samples, "test_data": source, "ckpt_path": str(cfg.ckpt_path)})
    path = write_json(Path(cfg.paths.output_dir) / "metrics.json", report)
    show_results(model, report)  # the per-class table and test: summary, as train.py shows them
    log.info("wrote %s", path)
    return report
