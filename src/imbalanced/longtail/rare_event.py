"""The rare-event settings of a training run (`decision.*`, `calibration`, `loss=bce`) and their checks.

Checked in two steps, both before training: the settings alone (`rare_event_settings`, before any
data is loaded) and against the data (`check_rare_event_data`: number of classes, validation
positives), as soon as the datamodule is set up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from imbalanced.errors import UserError
from imbalanced.longtail.calibration import CALIBRATIONS
from imbalanced.longtail.decision import (
    DecisionSettings,
    check_rule_for_data,
    decision_settings,
    positive_class,
)
from imbalanced.longtail.techniques import configured_loss, loss_setting


@dataclass(frozen=True)
class RareEventConfig:
    decision: DecisionSettings
    calibration: str
    sampler_q: float | None
    binary_loss: str | None  # the loss setting (`loss=bce`) when the loss declares `binary_only`


def rare_event_settings(cfg: DictConfig) -> RareEventConfig:
    node = cfg.get("decision")
    decision = decision_settings(OmegaConf.to_container(node, resolve=True) if node is not None else None)
    calibration = cfg.get("calibration", "auto")
    if calibration not in CALIBRATIONS:
        raise UserError(f"calibration={calibration!r} is invalid; allowed: one of {', '.join(CALIBRATIONS)}")
    sampler = cfg.get("sampler")
    q = sampler.get("q") if sampler is not None else None
    binary_loss = loss_setting(cfg) if configured_loss(cfg).binary_only else None
    return RareEventConfig(decision, calibration, None if q is None else float(q), binary_loss)


def check_rare_event_data(settings: RareEventConfig, datamodule: Any) -> None:
    """Checks that need the set-up data; raise UserError before training."""
    num_classes = int(datamodule.num_classes)
    if settings.binary_loss is not None and num_classes != 2:
        raise UserError(
            f"{settings.binary_loss} needs a binary problem; this data has {num_classes} classes "
            "(use a multiclass loss, e.g. loss=cross_entropy: the same as loss=bce on two classes)"
        )
    val_labels = datamodule.split_labels("val").cpu().numpy()  # labels only, no sample loaded
    positive = positive_class(datamodule.class_counts) if num_classes == 2 else 1
    check_rule_for_data(settings.decision, num_classes, val_labels, positive)


def configure_prediction(model: Any, settings: RareEventConfig) -> None:
    """Hand the settings to the model's prediction policy (it fits them on validation)."""
    policy = getattr(model, "prediction_policy", None)
    if policy is not None:
        policy.configure(settings.decision, settings.calibration, settings.sampler_q)


def apply_prediction_overrides(model: Any, cfg: DictConfig) -> None:
    """eval.py / predict.py: `calibration=none` and `decision.threshold=P` over the saved policy."""
    policy = getattr(model, "prediction_policy", None)
    if policy is None:
        return
    calibration = cfg.get("calibration")
    if calibration not in (None, "none"):
        raise UserError(
            f"calibration={calibration!r} is invalid here; allowed: null (as saved in the "
            "checkpoint, fitted on validation in training) or none (raw softmax)"
        )
    if calibration == "none":
        policy.calibration = "none"
    decision = cfg.get("decision")
    threshold = decision.get("threshold") if decision is not None else None
    if threshold is not None:
        policy.set_threshold(threshold, model.class_counts, model.posthoc_tau)


def refit_decision(
    model: Any, cfg: DictConfig, validation_logits: Callable[[], tuple[Tensor, Tensor]]
) -> None:
    """eval.py / predict.py `decision.rule=...`: choose a new threshold on the checkpoint's validation
    split (`validation_logits()` gives the model's logits and the labels); the calibration stays as
    saved."""
    node = cfg.get("decision")
    rule = node.get("rule") if node is not None else None
    if rule is None:
        return
    given = {
        k: v
        for k, v in OmegaConf.to_container(node, resolve=True).items()
        if k in ("rule", "cost_fn", "cost_fp", "target") and v is not None
    }
    if node.get("threshold") is not None:
        raise UserError("decision.threshold and decision.rule are both set; give one of them")
    settings = decision_settings(given)
    policy = model.prediction_policy
    check_rule_for_data(settings, policy.num_classes, None, 1)
    logits, labels = validation_logits()
    policy.know_counts(model.class_counts)
    check_rule_for_data(settings, policy.num_classes, labels.numpy(), policy._positive())
    policy.settings = settings
    policy.fit_cut(logits, labels)
    unreachable = policy.unreachable_message()
    if unreachable:
        raise UserError(unreachable)
