"""The task behind `predict.py`: class probabilities for every row of a table (or every image)."""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig
from torch.utils.data import DataLoader

from imbalanced.data.predict_inputs import PredictInputs
from imbalanced.data.table import read_table
from imbalanced.errors import UserError
from imbalanced.imbalance.rare_event import apply_prediction_overrides, refit_decision
from imbalanced.reporting.atomic import write_with
from imbalanced.reporting.csv_cells import escape_formula
from imbalanced.tasks.config_checks import check_config
from imbalanced.tasks.from_checkpoint import (
    build_single_device_trainer,
    data_overrides,
    feature_encoding,
    ignored_columns,
    load_classifier,
    saved_data,
    saved_data_config,
    set_posthoc_tau,
    table_loader,
    validation_split,
)
from imbalanced.tasks.output_paths import check_not_among, check_output_file
from imbalanced.tasks.safe_loading import trusted_targets

log = logging.getLogger(__name__)

PREDICTION_COLUMN = "prediction"
PROBABILITY_PREFIX = "prob_"


def predict(cfg: DictConfig) -> Path:
    """Write a CSV with one row per row of `data.path`, in order: `prediction` (the class name) and
    `prob_<class>` for every class. The target column, if the file has it, is ignored; every other
    column must match the checkpoint's feature columns. A datamodule class with `predict_inputs`
    (e.g. images: a folder or a list of image paths) reads `data.path` itself and adds the columns
    that name each row (the image `path`) before `prediction`.

    `prob_<class>` are calibrated for the real class frequencies (unless `calibration=none`);
    `prediction` is the decision: binary, `prob_<positive> >= decision_threshold` (chosen on
    validation, saved in the checkpoint); multiclass, the argmax of the model's (post-hoc adjusted)
    logits, which is not always the argmax of the calibrated probabilities."""
    check_config(cfg)  # the same setting checks as train.py
    overrides = data_overrides(cfg.get("data"))
    if not overrides.get("path"):
        raise UserError("data.path is not set; give the table to predict: data.path=FILE")
    path = overrides["path"]
    inputs = [("data.path", path), ("ckpt_path", cfg.ckpt_path)]
    output = check_output_file("output_path", cfg.output_path, inputs)  # before any work is done
    model = load_classifier(cfg.ckpt_path, trusted_targets(cfg))
    set_posthoc_tau(model, cfg.get("posthoc_tau"))
    apply_prediction_overrides(model, cfg)  # decision.threshold=..., calibration=none
    refit_decision(model, cfg, lambda: validation_split(model))  # decision.rule=... on its val split
    config = {**saved_data_config(model), **overrides}
    inputs = _datamodule_inputs(model, path, config)
    if inputs is None:  # a table
        frame = read_table(path, "data.path")
        x = feature_encoding(model).transform(frame, f"data.path={path}", ignored=ignored_columns(config))
        loader = table_loader(x, None, int(config.get("eval_batch_size") or 4096))
        columns: dict[str, list[Any]] = {}
    else:  # what the checkpoint's datamodule class reads (e.g. image files)
        check_not_among("output_path", output, map(str, inputs.columns.get("path", [])), f"data.path={path}")
        loader = DataLoader(inputs.dataset, batch_size=int(config.get("eval_batch_size") or 256),
                            shuffle=False, num_workers=int(config.get("num_workers") or 0))
        columns = inputs.columns

    trainer = build_single_device_trainer(cfg)
    model.predict_decisions = True  # the decision (threshold / argmax) besides the probabilities
    batches = trainer.predict(model, dataloaders=loader)
    probabilities = torch.cat([b["probabilities"].cpu() for b in batches]).double().numpy()
    decisions = torch.cat([b["prediction"].cpu() for b in batches]).numpy()

    names = model.class_names
    escape = bool(cfg.get("escape_formulas", True))
    shown = [escape_formula(name) for name in names] if escape else list(names)
    table = pd.DataFrame(probabilities, columns=[f"{PROBABILITY_PREFIX}{name}" for name in names])
    if escape:
        table.columns = [escape_formula(c) for c in table.columns]
    table.insert(0, PREDICTION_COLUMN, np.asarray(shown, dtype=object)[decisions])
    for position, (name, values) in enumerate(columns.items()):  # e.g. the image path, first
        table.insert(position, name, [escape_formula(str(v)) if escape else v for v in values])
    # atomically: a killed predict leaves the previous file or none, never a cut-off table
    write_with(output, lambda handle: table.to_csv(handle, index=False, lineterminator="\n"))
    log.info("wrote %d predictions to %s", len(table), output)
    return output


def _datamodule_inputs(model: Any, path: str, config: dict[str, Any]) -> PredictInputs | None:
    """The checkpoint's datamodule class's `predict_inputs` (data/predict_inputs.py); None: a table.
    The class's `_target_` passed the allow-list when the checkpoint was loaded."""
    target = config.get("_target_")
    if not isinstance(target, str) or "." not in target:
        return None
    module, _, name = target.rpartition(".")
    try:
        datamodule_class = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None
    hook = getattr(datamodule_class, "predict_inputs", None)
    return None if hook is None else hook(path, config, saved_data(model).get("inputs") or {})
