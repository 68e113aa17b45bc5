"""The task behind `predict.py`: class probabilities for every input the checkpoint's data reads."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig

from imbalanced.errors import UserError
from imbalanced.longtail.rare_event import apply_prediction_overrides, refit_decision
from imbalanced.runs.atomic_writes import write_with
from imbalanced.runs.config_checks import check_config
from imbalanced.runs.csv_cells import escape_formula
from imbalanced.runs.output_paths import check_not_among, check_output_file
from imbalanced.runs.safe_loading import trusted_targets
from imbalanced.tasks.from_checkpoint import (
    build_single_device_trainer,
    data_overrides,
    load_classifier,
    read_raw_inputs,
    saved_data_config,
    set_posthoc_tau,
    validation_logits,
)

log = logging.getLogger(__name__)

PREDICTION_COLUMN = "prediction"
PROBABILITY_PREFIX = "prob_"


def predict(cfg: DictConfig) -> Path:
    """Write a CSV with one row per input of `data.path`, in order: the columns that name each input
    (if the data gives any), `prediction` (the class name) and `prob_<class>` for every class.
    `data.path` is read by the checkpoint's datamodule class (`read_inputs`, data/contract.py).

    `prob_<class>` are calibrated for the real class frequencies (unless `calibration=none`);
    `prediction` is the decision: binary, `prob_<positive> >= decision_threshold` (chosen on
    validation, saved in the checkpoint); multiclass, the argmax of the model's (post-hoc adjusted)
    logits, which is not always the argmax of the calibrated probabilities."""
    check_config(cfg)  # the same setting checks as train.py
    overrides = data_overrides(cfg.get("data"))
    if not overrides.get("path"):
        raise UserError("data.path is not set; give the inputs to predict: data.path=FILE_OR_FOLDER")
    path = overrides["path"]
    inputs = [("data.path", path), ("ckpt_path", cfg.ckpt_path)]
    output = check_output_file("output_path", cfg.output_path, inputs)  # before any work is done
    model = load_classifier(cfg.ckpt_path, trusted_targets(cfg))
    set_posthoc_tau(model, cfg.get("posthoc_tau"))
    apply_prediction_overrides(model, cfg)  # decision.threshold=..., calibration=none
    refit_decision(model, cfg, lambda: validation_logits(model))  # decision.rule=... on its val split
    config = {**saved_data_config(model), **overrides}
    raw = read_raw_inputs(model, path, "data.path", config, labelled=False)
    check_not_among("output_path", output, raw.files, f"data.path={path}")  # a file it read
    loader = raw.loader(int(config.get("eval_batch_size") or 256), int(config.get("num_workers") or 0))
    columns = raw.columns

    trainer = build_single_device_trainer(cfg)
    model.predict_decisions = True  # the decision (threshold / argmax) besides the probabilities
    batches = trainer.predict(model, dataloaders=loader)
    probabilities = torch.cat([b["probabilities"].cpu() for b in batches]).double().numpy()
    decisions = torch.cat([b["prediction"].cpu() for b in batches]).numpy()

    names = model.class_names
    escape = bool(cfg.get("escape_formulas", True))
    shown = [escape_formula(name) for name in names] if escape else list(names)
    output_rows = pd.DataFrame(probabilities, columns=[f"{PROBABILITY_PREFIX}{name}" for name in names])
    if escape:
        output_rows.columns = [escape_formula(c) for c in output_rows.columns]
    output_rows.insert(0, PREDICTION_COLUMN, np.asarray(shown, dtype=object)[decisions])
    for position, (name, values) in enumerate(columns.items()):  # the data's own columns, first
        if name in output_rows.columns:  # an input column called like an output one keeps both
            name = f"input_{name}"
        output_rows.insert(position, name, [escape_formula(str(v)) if escape else v for v in values])
    # atomically: a killed predict leaves the previous file or none, never a cut-off output_rows
    write_with(output, lambda handle: output_rows.to_csv(handle, index=False, lineterminator="\n"))
    log.info("wrote %d predictions to %s", len(output_rows), output)
    return output
