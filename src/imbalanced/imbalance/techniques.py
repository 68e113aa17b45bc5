"""Checks and wiring for the long-tail techniques: losses, DRW, post-hoc adjustment, sampling.

Which combinations make sense (warned about, not refused, since some are deliberate experiments):

- `logit_adjusted` / `balanced_softmax` already correct for the prior inside the loss; adding a
  re-weighting strategy (`balanced`, `inverse`, ...) corrects twice and pushes predictions towards
  the tail (Menon et al. 2021, Sec. 4). Use `class_weights=none`, or a DRW schedule on purpose.
- `posthoc_tau > 0` corrects the prior after training; on top of a prior-corrected loss,
  re-weighting or class-balanced sampling it corrects twice.
- A class-balanced sampler (`sampler.q < 1`) plus a re-weighting strategy corrects twice.
- `focal` with a strategy: the class weights act as focal alpha (as intended).
- `ldam` with a strategy: meant with DRW (LDAM-DRW); without DRW it follows Cao et al.'s LDAM-RW.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from imbalanced.data.sampling import validate_sampler_settings
from imbalanced.errors import UserError
from imbalanced.imbalance.drw import DeferredReweighting
from imbalanced.imbalance.weights import strategy_name

PRIOR_CORRECTED_LOSSES = ("LogitAdjusted", "BalancedSoftmax")


class ImbalanceWarning(UserWarning):
    """A combination of imbalance techniques that probably corrects for the prior twice."""


def _loss_name(cfg: DictConfig) -> str:
    return str(cfg.loss.get("_target_", "")).rsplit(".", 1)[-1]


def drw_start_epoch(cfg: DictConfig) -> int | None:
    value = cfg.get("drw_start_epoch")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UserError(f"drw_start_epoch={value!r} must be null (no DRW) or an integer epoch >= 0")
    return value


def posthoc_tau(cfg: DictConfig) -> float:
    value = cfg.get("posthoc_tau", 0.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value < 0:
        raise UserError(f"posthoc_tau={value!r} must be a number >= 0 (0 disables, 1 is Menon et al.'s)")
    return float(value)


def check_loss_settings(cfg: DictConfig) -> None:
    """Build the configured loss once, so a bad setting (loss.gamma=-1) fails before any data loads."""
    target = cfg.loss.get("_target_")
    if target:
        settings = OmegaConf.to_container(cfg.loss, resolve=True)
        get_class(target)(**{k: v for k, v in settings.items() if not k.startswith("_")})


def check_techniques(cfg: DictConfig) -> None:
    """Validate the technique settings (UserError) and warn about double prior corrections."""
    check_loss_settings(cfg)
    drw = drw_start_epoch(cfg)
    tau = posthoc_tau(cfg)
    sampler = cfg.get("sampler")
    q = validate_sampler_settings(dict(sampler) if sampler is not None else None)
    strategy = strategy_name(cfg.class_weights)
    reweights = strategy not in ("none", "manual")
    loss = _loss_name(cfg)
    prior_loss = loss in PRIOR_CORRECTED_LOSSES and (loss == "BalancedSoftmax" or cfg.loss.get("tau", 1.0))
    balancing_sampler = q is not None and q < 1
    problems: list[str] = []
    if prior_loss and reweights and drw is None:
        problems.append(f"loss {loss} already corrects for the class prior; class_weights={strategy} "
                        "corrects again (use class_weights=none)")
    if balancing_sampler and reweights:
        problems.append(f"sampler.q={q} already rebalances the classes; class_weights={strategy} "
                        "corrects again (use class_weights=none)")
    if tau > 0 and (prior_loss or balancing_sampler or reweights):
        problems.append(f"posthoc_tau={tau} corrects the prior of a model already trained with a "
                        "prior correction (loss, class weights or sampler); train with plain cross "
                        "entropy, class_weights=none and sampler=none")
    if drw is not None and strategy == "none":
        problems.append("drw_start_epoch is set but class_weights=none: DRW switches to uniform "
                        "weights, i.e. it does nothing (use e.g. class_weights=effective_number)")
    for problem in problems:
        warnings.warn(problem, ImbalanceWarning, stacklevel=2)


def technique_callbacks(cfg: DictConfig) -> list[Any]:
    """Callbacks the technique settings need (DRW)."""
    start = drw_start_epoch(cfg)
    return [] if start is None else [DeferredReweighting(start)]
