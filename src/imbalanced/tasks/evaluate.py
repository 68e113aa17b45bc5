"""The task behind `eval.py`: test a checkpoint on its own test split or on a file."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from imbalanced.data.table import encode_labels, read_table, require_target
from imbalanced.errors import UserError
from imbalanced.imbalance.rare_event import apply_prediction_overrides, refit_decision
from imbalanced.reporting.run_files import metrics_report, write_json
from imbalanced.tasks.from_checkpoint import (
    build_single_device_trainer,
    data_overrides,
    feature_encoding,
    ignored_columns,
    load_classifier,
    rebuild_datamodule,
    saved_data_config,
    set_posthoc_tau,
    table_loader,
)

log = logging.getLogger(__name__)


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Write `metrics.json` (test/ keys) for `cfg.ckpt_path` into the run directory and return it.

    With `data.test_path=FILE` on the command line the file is read, encoded with the checkpoint's
    feature encoding and its labels mapped to the checkpoint's classes; no training data is needed.
    Otherwise the training datamodule is rebuilt from the data config in the checkpoint (same files,
    same seed, same split) and its test split is used: the training run's test metrics, reproduced.
    """
    model = load_classifier(cfg.ckpt_path)
    set_posthoc_tau(model, cfg.get("posthoc_tau"))
    apply_prediction_overrides(model, cfg)  # decision.threshold=..., calibration=none
    refit_decision(model, cfg, lambda: _validation_split(model))  # decision.rule=... on its val split
    overrides = data_overrides(cfg.get("data"))
    config = {**saved_data_config(model), **overrides}
    test_path = overrides.get("test_path")

    if test_path:
        frame = read_table(test_path, "data.test_path")
        labels = require_target(frame, config.get("target"), "data.test_path", test_path)
        x = feature_encoding(model).transform(
            frame, f"data.test_path={test_path}", ignored=ignored_columns(config)
        )
        y = encode_labels(labels, model.class_names, "data.test_path", test_path)
        loader = table_loader(x, y, int(config.get("eval_batch_size") or 4096))
        trainer = build_single_device_trainer(cfg)
        results = trainer.test(model, dataloaders=loader, verbose=False)[0]
        num_samples, source = len(y), str(test_path)
    else:
        datamodule = rebuild_datamodule(model, overrides)
        trainer = build_single_device_trainer(cfg)
        results = trainer.test(model, datamodule=datamodule, verbose=False)[0]
        num_samples = len(datamodule.splits.y_test)
        source = "test split of the checkpoint's data config"

    report = metrics_report(
        {"test": results}, model.class_names, class_counts=model.class_counts.tolist()
    )
    report.update(model.prediction_policy.report(model.class_names, model.class_counts, model.posthoc_tau))
    report.update({"test/num_samples": num_samples, "test_data": source, "ckpt_path": str(cfg.ckpt_path)})
    path = write_json(Path(cfg.paths.output_dir) / "metrics.json", report)
    log.info("wrote %s", path)
    return report


def _validation_split(model: Any) -> tuple[Any, Any]:
    """The checkpoint's own validation split (the training run's seeded split, rebuilt)."""
    splits = getattr(rebuild_datamodule(model, {}), "splits", None)
    if splits is None:
        raise UserError("decision.rule=... here needs a datamodule with in-memory splits; give "
                        "decision.threshold=P instead")
    return splits.x_val, splits.y_val
