"""What the train task hands from the datamodule to the model (the contract of data/base.py).

The model gets the class statistics, the backbone config completed with what the data dictates
(e.g. `in_features`), the data's input transform, and, to carry in its checkpoint, the data config
and input spec that eval.py / predict.py use to rebuild inputs.
"""

from __future__ import annotations

from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf


def data_offers(datamodule: Any, method: str, default: Any) -> Any:
    """An optional part of the data-to-model contract (data/base.py); `default` where a datamodule
    does not implement it."""
    hook = getattr(datamodule, method, None)
    return default if hook is None else hook()


def backbone_config(cfg: DictConfig, datamodule: Any) -> dict[str, Any]:
    """`model.backbone` completed with what the data dictates (e.g. `in_features`): saved as is."""
    backbone = OmegaConf.to_container(cfg.model.backbone, resolve=True)
    return {**backbone, **data_offers(datamodule, "backbone_inputs", {})}


def _group(cfg: DictConfig, name: str) -> dict[str, Any] | None:
    """A config group as a plain dict (kept in the checkpoint's hyperparameters); None when absent."""
    node = cfg.get(name)
    return None if node is None else OmegaConf.to_container(node, resolve=True)


def build_model(cfg: DictConfig, datamodule: Any) -> Any:
    statistics = datamodule.class_statistics
    return instantiate(
        cfg.model,
        backbone=backbone_config(cfg, datamodule),
        num_classes=statistics.num_classes,
        class_names=statistics.class_names,
        loss=OmegaConf.to_container(cfg.loss, resolve=True),
        optimizer=_group(cfg, "optimizer"),
        scheduler=_group(cfg, "scheduler"),
        input_transform=data_offers(datamodule, "input_transform", None),
        # what eval.py / predict.py need to rebuild inputs, in one place of the checkpoint
        data={
            "config": OmegaConf.to_container(cfg.data, resolve=True),
            "inputs": data_offers(datamodule, "input_spec", {}),
        },
    )
