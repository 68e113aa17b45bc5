"""The task behind `predict.py`: class probabilities for every row of a table."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import torch
from omegaconf import DictConfig

from imbalanced.data.table import read_table
from imbalanced.errors import UserError
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
from imbalanced.tasks.safe_loading import trusted_targets

log = logging.getLogger(__name__)

PREDICTION_COLUMN = "prediction"
PROBABILITY_PREFIX = "prob_"


def predict(cfg: DictConfig) -> Path:
    """Write a CSV with one row per row of `data.path`, in order: `prediction` (the class name) and
    `prob_<class>` for every class. The target column, if the file has it, is ignored; every other
    column must match the checkpoint's feature columns."""
    model = load_classifier(cfg.ckpt_path, trusted_targets(cfg))
    set_posthoc_tau(model, cfg.get("posthoc_tau"))
    overrides = data_overrides(cfg.get("data"))
    if not overrides.get("path"):
        raise UserError("data.path is not set; give the table to predict: data.path=FILE")
    config = {**saved_data_config(model), **overrides}
    path = overrides["path"]
    frame = read_table(path, "data.path")
    x = feature_encoding(model).transform(frame, f"data.path={path}", ignored=ignored_columns(config))

    trainer = build_single_device_trainer(cfg)
    loader = table_loader(x, None, int(config.get("eval_batch_size") or 4096))
    batches = trainer.predict(model, dataloaders=loader)
    probabilities = torch.cat([b.cpu() for b in batches]).double().numpy()

    names = model.class_names
    table = pd.DataFrame(probabilities, columns=[f"{PROBABILITY_PREFIX}{name}" for name in names])
    table.insert(0, PREDICTION_COLUMN, [names[i] for i in probabilities.argmax(axis=1)])
    output = Path(cfg.output_path)
    output.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(output, index=False)
    log.info("wrote %d predictions to %s", len(table), output)
    return output
