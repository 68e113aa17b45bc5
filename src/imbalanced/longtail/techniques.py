"""Checks and wiring for the long-tail techniques: losses, DRW, post-hoc adjustment, sampling.

Which combinations make sense (warned about, not refused, since some are deliberate experiments):

- A loss that declares `corrects_prior` (logit_adjusted, balanced_softmax) already corrects for the
  prior; adding a re-weighting strategy (`balanced`, `inverse`, ...) corrects twice and pushes
  predictions towards the tail (Menon et al. 2021, Sec. 4). `class_weights=auto` (the default)
  picks no weights for it; an explicit strategy is warned about unless a DRW schedule defers it.
- `posthoc_tau > 0` corrects the prior after training; on top of a prior-corrected loss,
  re-weighting or class-balanced sampling it corrects twice.
- A class-balanced sampler (`sampler.q < 1`) plus a re-weighting strategy corrects twice.
- `focal` with a strategy: the class weights act as focal alpha (as intended).
- `ldam` with a strategy: meant with DRW (Cao et al. 2019); without DRW it is their re-weighted variant.

What a loss does to the prior is read from its declaration (`ImbalanceLoss.prior_shift`,
`corrects_prior`, `binary_only`), never from its class name, so a fork's loss is treated alike.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from imbalanced.data.sampling import validate_sampler_settings
from imbalanced.errors import UserError
from imbalanced.longtail.drw import DeferredReweighting
from imbalanced.longtail.losses import DEFAULT_LOSS, ImbalanceLoss, build_loss
from imbalanced.longtail.weights import AUTO, built_in_config, strategy_name


class ImbalanceWarning(UserWarning):
    """A combination of imbalance techniques that probably corrects for the prior twice."""


def configured_loss(cfg: DictConfig) -> ImbalanceLoss:
    """The run's loss built from `cfg.loss` (the model's default without one); a bad setting such
    as loss.gamma=-1 fails here, before any data loads."""
    node = cfg.get("loss")
    return build_loss(OmegaConf.to_container(node, resolve=True) if node is not None else None)


def loss_setting(cfg: DictConfig) -> str:
    """How messages name the loss: the config group option (`loss=bce`) or its `_target_`."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        choice = HydraConfig.get().runtime.choices.get("loss")
        if choice:
            return f"loss={choice}"
    node = cfg.get("loss")
    return f"loss._target_={(node or DEFAULT_LOSS).get('_target_')}"


def drw_start_epoch(cfg: DictConfig) -> int | None:
    value = cfg.get("drw_start_epoch")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UserError(f"drw_start_epoch={value!r} must be null (no DRW) or an integer epoch >= 0")
    return value


def posthoc_tau(cfg: DictConfig) -> float:
    value = cfg.get("posthoc_tau", 0.0)
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise UserError(f"posthoc_tau={value!r} must be a number >= 0 (0 disables, 1 is Menon et al.'s)")
    return float(value)


def sampler_q(cfg: DictConfig) -> float | None:
    """The q of the `sampler` config (None: plain shuffling); raises UserError when invalid."""
    sampler = cfg.get("sampler")
    return validate_sampler_settings(dict(sampler) if sampler is not None else None)


# ---- class_weights: auto -----------------------------------------------------------------------
@dataclass(frozen=True)
class ClassWeightChoice:
    """The class-weight strategy a run applies: as requested, or what `auto` chose and why."""

    config: dict[str, Any] | None  # the applied strategy's config, as the datamodule gets it
    requested: str
    strategy: str
    reason: str

    def report(self) -> dict[str, str]:
        """The keys class_weights.json adds to the applied `strategy`."""
        return {"requested": self.requested, "reason": self.reason}

    def describe(self) -> str:
        return f"class_weights={self.strategy} (requested {self.requested}: {self.reason})"


def auto_strategy(loss: ImbalanceLoss, drw: int | None, tau: float, q: float | None) -> tuple[str, str]:
    """(strategy, reason) for `class_weights=auto`: balanced weights unless something else in the
    run already corrects the prior (the loss by its own declaration, post-hoc adjustment, a
    class-balanced sampler), so the default never corrects twice."""
    name = type(loss).__name__
    if drw is not None:  # DRW switches to the strategy's weights; uniform ones would make it a no-op
        return "balanced", f"drw_start_epoch={drw} re-weights from that epoch on"
    if loss.corrects_prior:
        return "none", f"loss {name} corrects the class prior itself"
    if tau > 0:
        return "none", f"posthoc_tau={tau} corrects the class prior after training"
    if q is not None and q < 1:
        return "none", f"sampler.q={q} already rebalances the classes"
    return "balanced", f"loss {name} does not correct the class prior"


def choose_class_weights(cfg: DictConfig) -> ClassWeightChoice:
    """The strategy the datamodule gets: `auto` resolved here (and only here), any other as given."""
    node = cfg.get("class_weights")
    config = OmegaConf.to_container(node, resolve=True) if node is not None else None
    requested = strategy_name(config)
    if requested != AUTO:
        return ClassWeightChoice(config, requested, requested, "set explicitly")
    strategy, reason = auto_strategy(
        configured_loss(cfg), drw_start_epoch(cfg), posthoc_tau(cfg), sampler_q(cfg)
    )
    return ClassWeightChoice(built_in_config(strategy), AUTO, strategy, reason)


def check_techniques(cfg: DictConfig) -> None:
    """Validate the technique settings (UserError) and warn about double prior corrections."""
    loss = configured_loss(cfg)
    drw = drw_start_epoch(cfg)
    tau = posthoc_tau(cfg)
    q = sampler_q(cfg)
    strategy = choose_class_weights(cfg).strategy
    reweights = strategy not in ("none", "manual")
    prior_loss = loss.corrects_prior
    balancing_sampler = q is not None and q < 1
    problems: list[str] = []
    if prior_loss and reweights and drw is None:
        problems.append(
            f"loss {type(loss).__name__} already corrects for the class prior; "
            f"class_weights={strategy} corrects again (use class_weights=auto or none)"
        )
    if balancing_sampler and reweights:
        problems.append(
            f"sampler.q={q} already rebalances the classes; class_weights={strategy} "
            "corrects again (use class_weights=auto or none)"
        )
    if tau > 0 and (prior_loss or balancing_sampler or reweights):
        problems.append(
            f"posthoc_tau={tau} corrects the prior of a model already trained with a "
            "prior correction (loss, class weights or sampler); train with plain cross "
            "entropy, class_weights=none and sampler=none"
        )
    if drw is not None and strategy == "none":
        problems.append(
            "drw_start_epoch is set but class_weights=none: DRW switches to uniform "
            "weights, i.e. it does nothing (use e.g. class_weights=effective_number)"
        )
    for problem in problems:
        warnings.warn(problem, ImbalanceWarning, stacklevel=2)


def technique_callbacks(cfg: DictConfig) -> list[Any]:
    """Callbacks the technique settings need (DRW)."""
    start = drw_start_epoch(cfg)
    return [] if start is None else [DeferredReweighting(start)]
