"""The task behind `predict.py`: class probabilities for every row of a table."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig

from imbalanced.data.table import read_table
from imbalanced.errors import UserError
from imbalanced.reporting.atomic import write_with
from imbalanced.reporting.csv_cells import escape_formula
from imbalanced.tasks.config_checks import check_config
from imbalanced.tasks.from_checkpoint import (
    build_single_device_trainer,
    data_overrides,
    feature_encoding,
    ignored_columns,
    load_classifier,
    saved_data_config,
    set_posthoc_tau,
    table_loader,
)
from imbalanced.tasks.output_paths import check_output_file
from imbalanced.tasks.safe_loading import trusted_targets

log = logging.getLogger(__name__)

PREDICTION_COLUMN = "prediction"
PROBABILITY_PREFIX = "prob_"


def predict(cfg: DictConfig) -> Path:
    """Write a CSV with one row per row of `data.path`, in order: `prediction` (the class name) and
    `prob_<class>` for every class. The target column, if the file has it, is ignored; every other
    column must match the checkpoint's feature columns."""
    check_config(cfg)  # the same setting checks as train.py
    overrides = data_overrides(cfg.get("data"))
    if not overrides.get("path"):
        raise UserError("data.path is not set; give the table to predict: data.path=FILE")
    path = overrides["path"]
    inputs = [("data.path", path), ("ckpt_path", cfg.ckpt_path)]
    output = check_output_file("output_path", cfg.output_path, inputs)  # before any work is done
    model = load_classifier(cfg.ckpt_path, trusted_targets(cfg))
    set_posthoc_tau(model, cfg.get("posthoc_tau"))
    config = {**saved_data_config(model), **overrides}
    frame = read_table(path, "data.path")
    x = feature_encoding(model).transform(frame, f"data.path={path}", ignored=ignored_columns(config))

    trainer = build_single_device_trainer(cfg)
    loader = table_loader(x, None, int(config.get("eval_batch_size") or 4096))
    batches = trainer.predict(model, dataloaders=loader)
    probabilities = torch.cat([b.cpu() for b in batches]).double().numpy()

    names = model.class_names
    escape = bool(cfg.get("escape_formulas", True))
    shown = [escape_formula(name) for name in names] if escape else list(names)
    table = pd.DataFrame(probabilities, columns=[f"{PROBABILITY_PREFIX}{name}" for name in names])
    if escape:
        table.columns = [escape_formula(c) for c in table.columns]
    table.insert(0, PREDICTION_COLUMN, np.asarray(shown, dtype=object)[probabilities.argmax(axis=1)])
    # atomically: a killed predict leaves the previous file or none, never a cut-off table
    write_with(output, lambda handle: table.to_csv(handle, index=False, lineterminator="\n"))
    log.info("wrote %d predictions to %s", len(table), output)
    return output
