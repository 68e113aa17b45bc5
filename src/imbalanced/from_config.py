"""A run's objects built from the composed config: the datamodule, the model, the trainer.

The model gets what the datamodule's `DataContract` (data/contract.py) says: the class statistics,
the backbone config completed with what the data dictates (e.g. `in_features`), the data's input
transform, and, to carry in its checkpoint, the data config and input spec that eval.py and
predict.py use to read inputs.
"""

from __future__ import annotations

from typing import Any

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from imbalanced.data.contract import DataContract
from imbalanced.errors import UserError, unwrap_user_errors
from imbalanced.longtail.techniques import ClassWeightChoice, choose_class_weights, technique_callbacks
from imbalanced.targets import accepted_parameters, import_target, required_parameters
from imbalanced.value_checks import show

# config groups the task hands to the model itself: the same key under `model` would be ignored
MODEL_GROUPS = ("loss", "optimizer", "scheduler")


def build_datamodule(cfg: DictConfig, weights: ClassWeightChoice | None = None) -> Any:
    """The datamodule of `cfg.data` with the class-weight strategy `weights` (default: chosen from
    `cfg`, `class_weights=auto` resolved from the loss)."""
    sampler = OmegaConf.to_container(cfg.sampler, resolve=True) if cfg.get("sampler") else None
    # the class-weight config reaches the datamodule as a plain dict (saved, reported), so it is
    # passed to the partial rather than to instantiate (which would build its `_target_`)
    with unwrap_user_errors():  # a setting the constructor refused: its one-line error
        weights = weights or choose_class_weights(cfg)
        datamodule = instantiate(cfg.data, _partial_=True)
        return datamodule(class_weights=weights.config, sampler=sampler)


def build_callbacks(cfg: DictConfig) -> list[L.Callback]:
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    return callbacks + technique_callbacks(cfg)  # DRW


def build_trainer(cfg: DictConfig) -> L.Trainer:
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values() if c is not None]
    return instantiate(cfg.trainer, callbacks=build_callbacks(cfg), logger=loggers or False)


def check_model_config(model: DictConfig) -> None:
    """`model.optimizer` and the like are read by no code: each is a config group of its own."""
    for group in MODEL_GROUPS:
        if group in model:
            raise UserError(
                f"model.{group}={show(model._get_node(group)._value())} is not read: the {group} is "
                f"the `{group}` config group; allowed: {group}=OPTION (configs/{group}/) and "
                f"{group}.KEY=VALUE beside `model`, not under it"
            )


def backbone_config(cfg: DictConfig, contract: DataContract) -> dict[str, Any]:
    """`model.backbone` completed with what the data dictates (e.g. `in_features`): saved as is.

    The data offers what it knows (`DataContract.backbone_inputs`); the backbone takes the settings
    it has parameters for."""
    backbone = OmegaConf.to_container(cfg.model.backbone, resolve=True)
    offered = contract.backbone_inputs
    target = import_target("model.backbone", backbone.get("_target_"))
    accepted = accepted_parameters(target)  # None: **kwargs, takes everything
    completed = {**backbone, **{k: v for k, v in offered.items() if accepted is None or k in accepted}}
    missing = sorted((required_parameters(target) or set()) - set(completed) - {"num_classes"})
    if missing:
        raise UserError(
            f"model.backbone ({backbone['_target_']}) needs {', '.join(missing)}, which the data "
            f"does not give (it gives {', '.join(offered) or 'nothing'}); "
            "choose a backbone that takes what this data gives, or set it"
        )
    return completed


def _group(cfg: DictConfig, name: str) -> dict[str, Any] | None:
    """A config group as a plain dict (kept in the checkpoint's hyperparameters); None when absent."""
    node = cfg.get(name)
    return None if node is None else OmegaConf.to_container(node, resolve=True)


def build_model(cfg: DictConfig, datamodule: Any) -> Any:
    """The LightningModule for the data; a backbone with `load_initial_weights()` (e.g. a user's
    pretrained file) loads them here, at the start of training only: checkpoints hold the trained
    weights, so eval/predict never read that file."""
    contract = datamodule.contract()
    model = instantiate(
        cfg.model,
        backbone=backbone_config(cfg, contract),
        num_classes=contract.num_classes,
        class_names=contract.class_names,
        loss=OmegaConf.to_container(cfg.loss, resolve=True),
        optimizer=_group(cfg, "optimizer"),
        scheduler=_group(cfg, "scheduler"),
        input_transform=contract.input_transform,
        # what eval.py / predict.py need to rebuild inputs, in one place of the checkpoint
        data={"config": OmegaConf.to_container(cfg.data, resolve=True), "inputs": contract.input_spec},
    )
    check_batch_norm_batch(model.backbone, OmegaConf.select(cfg, "data.batch_size", default=None))
    initial_weights = getattr(model.backbone, "load_initial_weights", None)
    if callable(initial_weights):
        initial_weights()
    return model


def check_batch_norm_batch(backbone: nn.Module, batch_size: Any) -> None:
    """BatchNorm cannot train on batches of one sample (a ValueError at the first step otherwise)."""
    if batch_size == 1 and any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in backbone.modules()):
        raise UserError(
            f"data.batch_size=1 is invalid with this backbone ({type(backbone).__name__}), which has "
            "BatchNorm layers; allowed: data.batch_size >= 2 (BatchNorm needs more than one sample "
            "per training batch), or a backbone without BatchNorm (model.backbone.batch_norm=false)"
        )
