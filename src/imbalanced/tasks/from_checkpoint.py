"""What eval.py and predict.py take from a checkpoint: the model, its data config and encoding."""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from imbalanced.classifier import ImbalancedClassifier
from imbalanced.data.encoding import FeatureEncoding
from imbalanced.data.loading import IndexBatchSampler, TensorBatchDataset, batch_loader
from imbalanced.errors import UserError


def load_classifier(ckpt_path: str | Path | None) -> ImbalancedClassifier:
    """`ImbalancedClassifier.load_from_checkpoint` alone: no datamodule, no training data."""
    if ckpt_path is None or str(ckpt_path) in ("", "???"):
        raise UserError("ckpt_path is not set; give a checkpoint: ckpt_path=RUN_DIR/checkpoints/last.ckpt")
    path = Path(str(ckpt_path)).expanduser()
    if not path.is_file():
        raise UserError(f"ckpt_path={ckpt_path}: file not found")
    try:
        model = ImbalancedClassifier.load_from_checkpoint(path, map_location="cpu")
    except (KeyError, TypeError, RuntimeError, EOFError, pickle.UnpicklingError, AttributeError) as error:
        raise UserError(
            f"ckpt_path={ckpt_path}: not a checkpoint of this template's ImbalancedClassifier ({error})"
        ) from None
    model.eval()
    return model


def set_posthoc_tau(model: Any, tau: float | None) -> None:
    """Post-hoc logit adjustment strength, where the module supports it."""
    if tau is not None and hasattr(model, "posthoc_tau"):
        model.posthoc_tau = float(tau)


def data_overrides(data: DictConfig | Mapping[str, Any] | None) -> dict[str, Any]:
    """The `data.*` settings given on the command line (null means: as saved in the checkpoint)."""
    if data is None:
        return {}
    plain = OmegaConf.to_container(data, resolve=True) if isinstance(data, DictConfig) else dict(data)
    return {key: value for key, value in plain.items() if value is not None}


def saved_data_config(model: ImbalancedClassifier) -> dict[str, Any]:
    return dict(model.hparams.get("data_config") or {})


def feature_encoding(model: ImbalancedClassifier) -> FeatureEncoding:
    """The checkpoint's column encoding; numeric columns named like the features when none was saved."""
    saved = model.hparams.get("feature_encoding")
    if saved:
        return FeatureEncoding.from_dict(saved)
    names = model.hparams.get("feature_names") or [f"x{i}" for i in range(model.hparams.num_features)]
    return FeatureEncoding.numeric_only(names)


def ignored_columns(config: Mapping[str, Any]) -> list[str]:
    """Columns of a table that are not features: the target and `data.drop_columns`."""
    target = config.get("target")
    drop = config.get("drop_columns") or []
    return [str(c) for c in ([target] if target else []) + list(drop)]


def rebuild_datamodule(model: ImbalancedClassifier, overrides: Mapping[str, Any]) -> Any:
    """The training run's datamodule (same seeded split), from the data config in the checkpoint."""
    saved = saved_data_config(model)
    if not saved:
        raise UserError(
            "this checkpoint holds no data config (it predates eval.py); evaluate a file instead: "
            "data.test_path=FILE data.target=COLUMN"
        )
    config = OmegaConf.merge(OmegaConf.create(saved), OmegaConf.create(dict(overrides)))
    datamodule = instantiate(config, class_weights=None)
    datamodule.setup("test")
    if datamodule.class_names != model.class_names:
        raise UserError(
            f"the data gives classes {datamodule.class_names} but the checkpoint was trained on "
            f"{model.class_names}; check the data.* overrides"
        )
    expected = list(model.hparams.get("feature_names") or [])
    if expected and datamodule.feature_names != expected:
        missing = [c for c in expected if c not in datamodule.feature_names]
        extra = [c for c in datamodule.feature_names if c not in expected]
        raise UserError(
            f"the data's features do not match the checkpoint's: missing {missing}, extra {extra}"
        )
    return datamodule


def table_loader(x: np.ndarray, y: np.ndarray | None, batch_size: int) -> Any:
    """Ordered, unpadded batches of a table (labels all zero when there are none)."""
    features = torch.as_tensor(x, dtype=torch.float32)
    labels = torch.as_tensor(y if y is not None else np.zeros(len(x), np.int64), dtype=torch.long)
    sampler = IndexBatchSampler(len(labels), batch_size, shuffle=False, pad=False)
    return batch_loader(TensorBatchDataset(features, labels), sampler)


def build_single_device_trainer(cfg: DictConfig) -> L.Trainer:
    """eval/predict run on one device of the configured accelerator, without loggers or callbacks."""
    return instantiate(
        cfg.trainer, devices=1, num_nodes=1, strategy="auto", logger=False, callbacks=[],
        enable_checkpointing=False,
    )
