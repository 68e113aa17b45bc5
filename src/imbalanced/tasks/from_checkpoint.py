"""What eval.py and predict.py take from a checkpoint: the model, its data config and input spec.

Both come from one place, the model's `data` hyperparameter (from_config.py): `config` is
the training run's data config (rebuilds its datamodule and seeded split), `inputs` the contract's
input spec, which the datamodule class's `read_inputs` uses to read a user's files
(data/contract.py). Scaling needs nothing here: the model applies its own fitted input transform.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from imbalanced.classifier import ImbalancedClassifier
from imbalanced.data.contract import RawInputs
from imbalanced.data.datamodule import LoaderDataModule
from imbalanced.errors import UserError
from imbalanced.runs.config_checks import check_target_node
from imbalanced.runs.safe_loading import check_targets, named_targets, read_checkpoint
from imbalanced.targets import import_dotted, import_target


def load_classifier(
    ckpt_path: str | Path | None, trusted_targets: Sequence[str] | None = ()
) -> ImbalancedClassifier:
    """`ImbalancedClassifier.load_from_checkpoint` alone: no datamodule, no training data."""
    return classifier_of(read_trusted_checkpoint(ckpt_path, trusted_targets), ckpt_path)


def read_trusted_checkpoint(
    ckpt_path: str | Path | None, trusted_targets: Sequence[str] | None = ()
) -> dict[str, Any]:
    """The checkpoint file, read with `weights_only=True`, once every `_target_` in its
    hyperparameters is on the allow-list (safe_loading) and imports; nothing is instantiated."""
    if ckpt_path is None or str(ckpt_path) in ("", "???"):
        raise UserError("ckpt_path is not set; give a checkpoint: ckpt_path=RUN_DIR/checkpoints/last.ckpt")
    checkpoint = read_checkpoint(Path(str(ckpt_path)).expanduser())
    check_targets(checkpoint.get("hyper_parameters") or {}, trusted_targets, path=ckpt_path)
    check_importable(checkpoint.get("hyper_parameters") or {}, ckpt_path)
    return checkpoint


def classifier_of(checkpoint: Mapping[str, Any], ckpt_path: str | Path | None) -> ImbalancedClassifier:
    """The model (in eval mode) of a checkpoint from `read_trusted_checkpoint`; one line naming
    `ckpt_path` when the file is not one of this template's classifiers."""
    try:
        model = classifier_from(checkpoint)
    except UserError:
        raise
    except Exception as error:  # noqa: BLE001 - any failure means "not one of our checkpoints"
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UserError(
            f"ckpt_path={ckpt_path}: not a checkpoint of this template's ImbalancedClassifier ({first})"
        ) from None
    model.eval()
    return model


def classifier_from(checkpoint: Mapping[str, Any]) -> ImbalancedClassifier:
    """The model of a checkpoint already read (and checked), as `load_from_checkpoint` builds it,
    without reading the file again: hyperparameters as init arguments, then the module's own
    `on_load_checkpoint` and a strict `load_state_dict`. (Lightning's migrations of old checkpoints
    only touch training state, which a model for eval/predict does not read.)"""
    hyperparameters = checkpoint.get("hyper_parameters") or {}
    accepted = inspect.signature(ImbalancedClassifier).parameters
    model = ImbalancedClassifier(**{k: v for k, v in hyperparameters.items() if k in accepted})
    model.on_load_checkpoint(checkpoint)
    model.load_state_dict(checkpoint["state_dict"])
    return model


def check_importable(hyperparameters: Mapping[str, Any], ckpt_path: str | Path) -> None:
    """Every (allowed) `_target_` must import: a fork's package that is not installed or not on
    PYTHONPATH is named, instead of failing later as "not a checkpoint"."""
    for where, target in named_targets(hyperparameters):
        try:
            import_dotted(target)
        except (ImportError, AttributeError, ValueError) as error:
            raise UserError(
                f"ckpt_path={ckpt_path}: its {where}={target} cannot be imported ({error}); the package "
                "that defines it must be importable: install it, or add its folder to PYTHONPATH"
            ) from None


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


def data_class(model: ImbalancedClassifier) -> type[LoaderDataModule]:
    """The datamodule class the checkpoint's data config names (its `_target_` passed the allow-list
    when the checkpoint was loaded): it reads raw inputs for this checkpoint."""
    target = saved_data_config(model).get("_target_")
    if not target:
        raise UserError(
            "this checkpoint holds no data config (it predates eval.py and predict.py), so "
            "it cannot read raw inputs"
        )
    found = import_target("the checkpoint's data config", target)
    if not (isinstance(found, type) and issubclass(found, LoaderDataModule)):
        raise UserError(
            f"the checkpoint's data config names {target}, which is not a datamodule of "
            "this template (a LoaderDataModule subclass)"
        )
    return found


def read_raw_inputs(
    model: ImbalancedClassifier, path: str, setting: str, config: Mapping[str, Any], labelled: bool
) -> RawInputs:
    """`path` (a file or folder given as `setting`) read by the checkpoint's datamodule class."""
    inputs = data_class(model).read_inputs(
        str(path),
        setting=setting,
        config=config,
        spec=dict(saved_data(model).get("inputs") or {}),
        class_names=model.class_names,
        labelled=labelled,
    )
    if labelled and inputs.labels is None:
        raise UserError(f"{setting}={path}: the data gave no labels to evaluate against")
    return inputs


def rebuild_datamodule(model: ImbalancedClassifier, overrides: Mapping[str, Any]) -> Any:
    """The training run's datamodule (same seeded split), from the data config in the checkpoint."""
    saved = saved_data_config(model)
    if not saved:
        raise UserError(
            "this checkpoint holds no data config (it predates eval.py); evaluate a file instead: "
            "data.test_path=PATH"
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
    rebuilt_inputs = datamodule.contract().input_spec
    if rebuilt_inputs != saved_inputs:
        changed = sorted(
            k for k in set(saved_inputs) | set(rebuilt_inputs) if saved_inputs.get(k) != rebuilt_inputs.get(k)
        )
        raise UserError(
            f"the data's input spec ({', '.join(changed)}) differs from the checkpoint's, so the model "
            "would read its inputs differently; check the data.* overrides"
        )
    return datamodule


def build_single_device_trainer(cfg: DictConfig, callbacks: list[L.Callback] | None = None) -> L.Trainer:
    """eval/predict run on one device of the configured accelerator, without loggers (and without
    callbacks but the given ones)."""
    return instantiate(
        cfg.trainer,
        devices=1,
        num_nodes=1,
        strategy="auto",
        logger=False,
        callbacks=callbacks or [],
        enable_checkpointing=False,
    )


def validation_logits(model: ImbalancedClassifier) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's logits and the labels of the checkpoint's own validation split (the training
    run's seeded split, rebuilt), batch by batch through the datamodule's loader."""
    loader = rebuild_datamodule(model, {}).val_dataloader()
    logits, labels = [], []
    with torch.no_grad():
        for inputs, targets in loader:
            logits.append(model(inputs).float())
            labels.append(torch.as_tensor(targets))
    return torch.cat(logits), torch.cat(labels)
