"""Checks around resuming (`ckpt_path=...`) and the run directory, so no run is lost or mixed up.

- A fresh run refuses a run directory that already holds checkpoints (it would overwrite them).
- A resumed run must rebuild the same model and see the same training split: the checkpoint's
  backbone settings (with what the data adds, e.g. `in_features`), its class counts / class
  weights and its fitted input transform (e.g. a standardization) must match.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from imbalanced.errors import UserError
from imbalanced.from_config import backbone_config
from imbalanced.runs.safe_loading import read_checkpoint


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
    """The checkpoint to resume from, read with `weights_only=True` (no code from the file runs)."""
    return read_checkpoint(path)


def check_resume(cfg: DictConfig, datamodule: Any, checkpoint: dict[str, Any]) -> None:
    """The checkpoint must match the model config and the training split the data gives now."""
    path = cfg.ckpt_path
    for key in ("state_dict", "epoch", "loops", "optimizer_states"):
        if key not in checkpoint:
            raise UserError(f"ckpt_path={path} is not a Lightning training checkpoint (no {key!r})")
    hparams = checkpoint.get("hyper_parameters", {})
    contract = datamodule.contract()
    backbone = backbone_config(cfg, contract)
    if hparams.get("backbone") is not None and hparams["backbone"] != backbone:
        raise UserError(
            f"model.backbone={backbone} differs from the checkpoint's {hparams['backbone']}; allowed: "
            "the settings of the run being resumed (see its .hydra/config.yaml)"
        )
    statistics = contract.class_statistics
    now = {"class_counts": statistics.counts, "class_weights": statistics.weights}
    for name, value in contract.input_transform_state.items():
        now[f"input_transform.{name}"] = value
    _check_same_optimization(cfg, hparams)
    _check_same_posthoc_tau(cfg, checkpoint)
    state = checkpoint["state_dict"]
    for name, value in now.items():
        if name not in state:
            continue
        saved = state[name].double().numpy()
        value = np.asarray(value, dtype=np.float64)
        if saved.shape != value.shape or not np.allclose(saved, value, rtol=1e-5, atol=1e-6):
            raise UserError(
                f"ckpt_path={path} was trained with {name}={np.round(saved, 4).tolist()} but the data "
                f"and class_weights settings now give {np.round(value, 4).tolist()}; allowed: the data, "
                "class_weights and seed settings of the run being resumed (see its .hydra/config.yaml)"
            )


# Hyperparameters whose state Lightning restores from the checkpoint (optimizer and scheduler
# states), so a new value on the command line would not apply while the new checkpoints record it.
RESTORED_HPARAMS = ("optimizer", "scheduler")


def setting_differences(saved: Any, now: Any, where: str) -> list[str]:
    """`key: saved -> now` for every leaf that differs between two nested settings, whatever shape."""
    if isinstance(saved, Mapping) and isinstance(now, Mapping):
        return [
            difference
            for key in dict.fromkeys([*saved, *now])
            for difference in setting_differences(saved.get(key), now.get(key), f"{where}.{key}")
        ]
    return [] if saved == now else [f"{where}: {saved!r} -> {now!r}"]


def check_restored_settings(path: str | Path, saved: Mapping[str, Any], now: Mapping[str, Any]) -> None:
    """Resuming restores the optimizer and scheduler state saved in the checkpoint; refuse changed
    settings for them instead of letting the new run's record claim values that never ran."""
    changes = [
        change
        for key in RESTORED_HPARAMS
        if key in saved or key in now
        for change in setting_differences(saved.get(key), now.get(key), key)
    ]
    if changes:
        raise UserError(
            f"ckpt_path={path} was trained with other optimizer/scheduler settings ({'; '.join(changes)} "
            "as checkpoint -> now); a resumed run continues with the optimizer state of the checkpoint, "
            "so these would not apply. allowed: the settings of the run being resumed (see its "
            ".hydra/config.yaml), or a fresh run without ckpt_path"
        )


def _check_same_posthoc_tau(cfg: DictConfig, checkpoint: dict[str, Any]) -> None:
    """Loading the checkpoint restores its posthoc_tau over the command line's: refuse a new value
    instead of validating, picking the best and testing with the old one while the record says new."""
    saved, now = checkpoint.get("posthoc_tau"), cfg.get("posthoc_tau")
    if saved is not None and now is not None and float(saved) != float(now):
        raise UserError(
            f"posthoc_tau={now} differs from the checkpoint's {saved}; allowed: the posthoc_tau of the "
            f"run being resumed ({saved}); eval.py / predict.py take any posthoc_tau for a trained model"
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
