"""What the train task hands from the datamodule to the model: its `DataContract` (data/contract.py).

The model gets the class statistics, the backbone config completed with what the data dictates
(e.g. `in_features`), the data's input transform, and, to carry in its checkpoint, the data config
and input spec that eval.py / predict.py use to read inputs.
"""

from __future__ import annotations

import inspect
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from imbalanced.data.contract import DataContract
from imbalanced.errors import UserError
from imbalanced.tasks.config_checks import accepted_parameters, import_target


def backbone_config(cfg: DictConfig, contract: DataContract) -> dict[str, Any]:
    """`model.backbone` completed with what the data dictates (e.g. `in_features`): saved as is.

    The data offers what it knows (`DataContract.backbone_inputs`); the backbone takes the settings
    it has parameters for."""
    backbone = OmegaConf.to_container(cfg.model.backbone, resolve=True)
    offered = contract.backbone_inputs
    target = import_target("model.backbone", backbone.get("_target_"))
    accepted = accepted_parameters(target)  # None: **kwargs, takes everything
    completed = {**backbone, **{k: v for k, v in offered.items() if accepted is None or k in accepted}}
    missing = sorted(_required_parameters(target) - set(completed) - {"num_classes"})
    if missing:
        raise UserError(
            f"model.backbone ({backbone['_target_']}) needs {', '.join(missing)}, which the data "
            f"does not give (it gives {', '.join(offered) or 'nothing'}); "
            "choose a backbone that takes what this data gives, or set it"
        )
    return completed


def _required_parameters(target: Any) -> set[str]:
    try:
        parameters = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return set()
    return {
        p.name
        for p in parameters
        if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


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
    initial_weights = getattr(model.backbone, "load_initial_weights", None)
    if callable(initial_weights):
        initial_weights()
    return model
