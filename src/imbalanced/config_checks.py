"""Checks of the composed config that need no data: they run before anything is loaded."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from imbalanced.errors import UserError
from imbalanced.losses import NORMALIZATIONS, REDUCTIONS
from imbalanced.techniques import check_techniques
from imbalanced.weights import validate_weight_settings


def check_config(cfg: DictConfig) -> None:
    """Raise UserError naming the first invalid setting and what is valid."""
    weights: dict[str, Any] = OmegaConf.to_container(cfg.class_weights, resolve=True)
    unknown = set(weights) - {"strategy", "beta", "weights"}
    if unknown:
        raise UserError(
            f"class_weights has unknown key(s) {sorted(unknown)}; valid: strategy, beta, weights"
        )
    validate_weight_settings(
        weights.get("strategy", "none"), beta=weights.get("beta"), weights=weights.get("weights")
    )
    loss = cfg.loss
    if loss.get("reduction", "mean") not in REDUCTIONS:
        raise UserError(f"loss.reduction={loss.reduction!r} is unknown; valid: {', '.join(REDUCTIONS)}")
    if loss.get("normalize", "weight_sum") not in NORMALIZATIONS:
        raise UserError(
            f"loss.normalize={loss.normalize!r} is unknown; valid: {', '.join(NORMALIZATIONS)}"
        )
    check_techniques(cfg)
