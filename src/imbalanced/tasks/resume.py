"""Checks around resuming (`ckpt_path=...`) and the run directory, so no run is lost or mixed up.

- A fresh run refuses a run directory that already holds checkpoints (it would overwrite them).
- A resumed run must rebuild the same model and see the same training split: the checkpoint's
  backbone settings and its class counts / class weights / feature scaling must match.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from imbalanced.errors import UserError

BUFFERS = ("class_counts", "class_weights", "feature_mean", "feature_scale")


def check_run_dir(cfg: DictConfig) -> None:
    """Refuse to start a fresh run where an earlier run's checkpoints would be overwritten."""
    if cfg.get("ckpt_path") is not None or rank_zero_only.rank != 0:
        return
    checkpoints = Path(cfg.paths.output_dir) / "checkpoints"
    existing = sorted(p.name for p in checkpoints.glob("*.ckpt")) if checkpoints.is_dir() else []
    if existing:
        raise UserError(
            f"hydra.run.dir={cfg.paths.output_dir} already holds checkpoints {existing}; allowed: a new "
            f"run directory, or resume that run with ckpt_path={checkpoints / 'last.ckpt'}"
        )


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    try:
        # our own Lightning checkpoint: it holds plain Python objects besides tensors
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # noqa: BLE001 - any failure means "not a usable checkpoint"
        raise UserError(f"ckpt_path={path} is not a readable checkpoint ({error})") from None


def check_resume(cfg: DictConfig, datamodule: Any, checkpoint: dict[str, Any]) -> None:
    """The checkpoint must match the model config and the training split the data gives now."""
    path = cfg.ckpt_path
    for key in ("state_dict", "epoch", "loops", "optimizer_states"):
        if key not in checkpoint:
            raise UserError(f"ckpt_path={path} is not a Lightning training checkpoint (no {key!r})")
    hparams = checkpoint.get("hyper_parameters", {})
    backbone = OmegaConf.to_container(cfg.model.backbone, resolve=True)
    if hparams.get("backbone") is not None and hparams["backbone"] != backbone:
        raise UserError(
            f"model.backbone={backbone} differs from the checkpoint's {hparams['backbone']}; allowed: "
            "the settings of the run being resumed (see its .hydra/config.yaml)"
        )
    _check_same_optimization(cfg, hparams)
    state = checkpoint["state_dict"]
    for name in BUFFERS:
        if name not in state:
            continue
        saved = state[name].double().numpy()
        now = np.asarray(getattr(datamodule, name), dtype=np.float64)
        if saved.shape != now.shape or not np.allclose(saved, now, rtol=1e-5, atol=1e-6):
            raise UserError(
                f"ckpt_path={path} was trained with {name}={np.round(saved, 4).tolist()} but the data "
                f"and class_weights settings now give {np.round(now, 4).tolist()}; allowed: the data, "
                "class_weights and seed settings of the run being resumed (see its .hydra/config.yaml)"
            )


def _check_same_optimization(cfg: DictConfig, hparams: dict[str, Any]) -> None:
    """The saved optimizer and scheduler states only load into the same kinds (settings may change)."""
    from imbalanced.optimization import optimizer_config

    for group in ("optimizer", "scheduler"):
        saved = hparams.get(group)
        if not isinstance(saved, dict) and saved is not None:
            continue  # a checkpoint from before the config groups
        now = OmegaConf.to_container(cfg[group], resolve=True) if cfg.get(group) is not None else None
        if group == "optimizer":
            saved, now = optimizer_config(saved), optimizer_config(now)
        kinds = [(c or {}).get("_target_") for c in (saved, now)]
        warmups = [bool((c or {}).get("warmup_epochs")) for c in (saved, now)] if group == "scheduler" else []
        if kinds[0] != kinds[1] or (warmups and warmups[0] != warmups[1]):
            raise UserError(
                f"{group}={kinds[1]} differs from the checkpoint's {kinds[0]} (or its warm-up); "
                f"allowed: the {group} of the run being resumed (see its .hydra/config.yaml), whose "
                "state the checkpoint holds"
            )


@rank_zero_only
def keep_earlier_logs(output_dir: str | Path) -> list[Path]:
    """Resuming in place: Lightning's CSVLogger deletes an existing metrics.csv; keep it renamed."""
    kept = []
    for path in sorted(Path(output_dir).glob("**/metrics.csv")):
        index = 1
        while (target := path.with_name(f"metrics.part{index}.csv")).exists():
            index += 1
        path.rename(target)
        kept.append(target)
    return kept
