"""What eval.py and predict.py take from a checkpoint: the model, its data config and input spec.

Both come from one place, the model's `data` hyperparameter (tasks/data_to_model.py): `config` is
the training run's data config (rebuilds its datamodule and seeded split), `inputs` the datamodule's
`input_spec()` (for tables: the column encoding). Scaling needs nothing here: the model applies its
own fitted input transform.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
from imbalanced.tasks.config_checks import check_target_node
from imbalanced.tasks.safe_loading import check_targets, read_checkpoint


def load_classifier(
    ckpt_path: str | Path | None, trusted_targets: Sequence[str] | None = ()
) -> ImbalancedClassifier:
    """`ImbalancedClassifier.load_from_checkpoint` alone: no datamodule, no training data.

    The file is read with `weights_only=True` and every `_target_` in its hyperparameters is
    checked against the allow-list (safe_loading) before anything is instantiated.
    """
    if ckpt_path is None or str(ckpt_path) in ("", "???"):
        raise UserError("ckpt_path is not set; give a checkpoint: ckpt_path=RUN_DIR/checkpoints/last.ckpt")
    path = Path(str(ckpt_path)).expanduser()
    checkpoint = read_checkpoint(path)
    check_targets(checkpoint.get("hyper_parameters") or {}, trusted_targets, path=ckpt_path)
    del checkpoint
    try:
        model = ImbalancedClassifier.load_from_checkpoint(path, map_location="cpu", weights_only=True)
    except UserError:
        raise
    except Exception as error:  # noqa: BLE001 - any failure means "not one of our checkpoints"
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UserError(
            f"ckpt_path={ckpt_path}: not a checkpoint of this template's ImbalancedClassifier ({first})"
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


def saved_data(model: ImbalancedClassifier) -> dict[str, Any]:
    return dict(model.hparams.get("data") or {})


def saved_data_config(model: ImbalancedClassifier) -> dict[str, Any]:
    return dict(saved_data(model).get("config") or {})


def feature_encoding(model: ImbalancedClassifier) -> FeatureEncoding:
    """The checkpoint's column encoding (its data's input spec), for reading a table file."""
    saved = (saved_data(model).get("inputs") or {}).get("encoding")
    if not saved:
        target = saved_data_config(model).get("_target_", "unknown")
        raise UserError(
            f"this checkpoint's data ({target}) is not a feature table: it holds no column encoding, "
            "so eval.py data.test_path=FILE and predict.py cannot read a table for it"
        )
    return FeatureEncoding.from_dict(saved)


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
    check_target_node("data", OmegaConf.to_container(config, resolve=False))  # e.g. a key it doesn't take
    datamodule = instantiate(config, class_weights=None)
    datamodule.setup("test")
    class_names = datamodule.class_statistics.class_names
    if class_names != model.class_names:
        raise UserError(
            f"the data gives classes {class_names} but the checkpoint was trained on "
            f"{model.class_names}; check the data.* overrides"
        )
    saved_inputs = saved_data(model).get("inputs") or {}
    rebuilt_inputs = datamodule.input_spec() if hasattr(datamodule, "input_spec") else {}
    if saved_inputs.get("encoding") and rebuilt_inputs.get("encoding"):
        expected = FeatureEncoding.from_dict(saved_inputs["encoding"]).feature_names
        given = FeatureEncoding.from_dict(rebuilt_inputs["encoding"]).feature_names
        if given != expected:
            missing = [c for c in expected if c not in given]
            extra = [c for c in given if c not in expected]
            raise UserError(
                f"the data's features do not match the checkpoint's: missing {missing}, extra {extra}"
            )
    elif saved_inputs != rebuilt_inputs:
        raise UserError("the data's input spec differs from the checkpoint's; check the data.* overrides")
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


def validation_split(model: Any) -> tuple[Any, Any]:
    """The checkpoint's own validation split (the training run's seeded split, rebuilt)."""
    splits = getattr(rebuild_datamodule(model, {}), "splits", None)
    if splits is None:
        raise UserError("decision.rule=... here needs a datamodule with in-memory splits; give "
                        "decision.threshold=P instead")
    return splits.x_val, splits.y_val
