"""What the classifier does with its logits: calibrated probabilities and the decision.

`PredictionPolicy` holds the settings (decision rule, calibration mode, sampler exponent) and what
was fitted on validation (temperature, prior shift, the binary cut). The classifier refits it at the
end of every validation epoch during `fit` (on the logits of all ranks), so each checkpoint carries
the fit for its own weights; it travels in the checkpoint under `prediction_policy` (see
`ImbalancedClassifier.on_save_checkpoint`). A checkpoint without it predicts as before: raw softmax
and argmax.

Decisions never depend on the calibration: multiclass (and `decision.rule=argmax`) takes the argmax
of the post-hoc adjusted logits, binary rules cut the logit margin. The threshold reported
(`decision_threshold`) is that cut expressed on the probability written for the positive class.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import torch
from torch import Tensor

from imbalanced.errors import UserError
from imbalanced.longtail.calibration import (
    CALIBRATIONS,
    calibrated_logits,
    closed_form_prior_shift,
    fit_prior_and_temperature,
)
from imbalanced.longtail.decision import DecisionSettings, choose_threshold, positive_class
from imbalanced.longtail.losses import ImbalanceLoss, log_prior, posthoc_adjust

log = logging.getLogger(__name__)


def _logit(p: float) -> float:
    return math.log(p) - math.log1p(-p)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


class PredictionPolicy:
    """Settings + fitted state; plain Python (its state goes into the checkpoint dict)."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = int(num_classes)
        self.settings = DecisionSettings()
        self.calibration = "auto"
        self.sampler_q: float | None = None
        self.configured = False  # set by a training run: its settings win over a resumed checkpoint's
        self.reset_fit()

    def reset_fit(self) -> None:
        self.temperature = 1.0
        self.shift: Tensor | None = None  # None: not calibrated (raw softmax)
        self.calibration_method = "none"
        self.cut: float | None = None  # binary cut on z_pos - z_neg; None: argmax
        self.positive: int | None = None
        self.rule_used = "argmax"
        self.validation: dict[str, Any] = {}

    @property
    def binary(self) -> bool:
        return self.num_classes == 2

    def configure(self, settings: DecisionSettings, calibration: str, sampler_q: float | None) -> None:
        if calibration not in CALIBRATIONS:
            raise UserError(
                f"calibration={calibration!r} is invalid; allowed: one of {', '.join(CALIBRATIONS)}"
            )
        self.settings, self.calibration, self.sampler_q = settings, calibration, sampler_q
        self.configured = True

    # ---- fitting on validation ---------------------------------------------------------------
    def fit(
        self,
        logits: Tensor,
        labels: Tensor,
        class_counts: Tensor,
        class_weights: Tensor,
        loss: ImbalanceLoss | None,
    ) -> None:
        """Fit calibration and the binary cut on the validation logits of all ranks; `loss` (the
        training criterion) declares the prior shift it trained into the logits."""
        logits, labels = logits.detach().float().cpu(), labels.detach().long().cpu()
        self.reset_fit()
        if self.calibration != "none" and len(labels):
            closed = closed_form_prior_shift(loss, class_weights, class_counts, self.sampler_q)
            self.calibration_method, self.temperature, shift = fit_prior_and_temperature(
                logits, labels, closed, self.calibration
            )
            self.shift = shift.float()
        self.positive = positive_class(class_counts.detach().cpu().numpy())
        self.fit_cut(logits, labels)

    def fit_cut(self, logits: Tensor, labels: Tensor) -> None:
        """Choose the binary cut by the configured rule on validation logits (calibration untouched)."""
        logits, labels = logits.detach().float().cpu(), labels.detach().long().cpu()
        self.cut, self.rule_used, self.validation = None, "argmax", {}
        rule = self.settings.resolved_rule(self.num_classes)
        if not self.binary or rule == "argmax":
            return
        margins = self.margin(logits).double().numpy()
        choice = choose_threshold(margins, (labels == self.positive).numpy(), self.settings, rule)
        if choice is None:  # validation without positives (or negatives): nothing to choose from
            log.warning("decision.rule=%s: validation has no samples of one class; using argmax", rule)
            return
        self.cut, self.rule_used = choice.cut, rule
        self.validation = {
            "precision": choice.precision,
            "recall": choice.recall,
            "f1": choice.f1,
            "cost": choice.cost,
            "reachable": choice.reachable,
            "note": choice.note,
        }

    def unreachable_message(self) -> str | None:
        """One line when the operating point asked for was not reached on validation."""
        if self.validation.get("reachable", True):
            return None
        return (
            f"decision.rule={self.settings.rule} decision.target={self.settings.target} is not "
            f"reachable: {self.validation['note']}; lower decision.target"
        )

    # ---- applying ----------------------------------------------------------------------------
    def margin(self, logits: Tensor) -> Tensor:
        positive = self._positive()
        return logits[:, positive].float() - logits[:, 1 - positive].float()

    def calibrated(self) -> bool:
        return self.calibration != "none" and self.shift is not None

    def probabilities(self, logits: Tensor, class_counts: Tensor, posthoc_tau: float) -> Tensor:
        """Calibrated probabilities, or the raw softmax (of the post-hoc adjusted logits)."""
        if self.calibrated():
            return torch.softmax(calibrated_logits(logits, self.temperature, self.shift), dim=-1)
        return self.raw_probabilities(logits, class_counts, posthoc_tau)

    @staticmethod
    def raw_probabilities(logits: Tensor, class_counts: Tensor, posthoc_tau: float) -> Tensor:
        return torch.softmax(posthoc_adjust(logits.float(), class_counts, posthoc_tau), dim=-1)

    def decision_logits(self, logits: Tensor, class_counts: Tensor, posthoc_tau: float) -> Tensor:
        """Scores whose argmax is the decision (binary cut or argmax of the adjusted logits)."""
        if self.cut is None or not self.binary:
            return posthoc_adjust(logits, class_counts, posthoc_tau)
        scores = torch.zeros_like(logits, dtype=torch.float32)
        scores[:, self._positive()] = self.margin(logits) - self.cut
        return scores

    # ---- thresholds on the probability scale ---------------------------------------------------
    def know_counts(self, class_counts: Tensor) -> None:
        """Take the positive (minority) class from the training counts when none was fitted."""
        if self.positive is None and self.binary and bool((class_counts > 0).any()):
            self.positive = positive_class(class_counts.detach().cpu().numpy())

    def _positive(self) -> int:
        return self.positive if self.positive is not None else 1

    def _log_odds_offset(self, class_counts: Tensor, posthoc_tau: float) -> tuple[float, float]:
        """(scale, offset): log-odds of the written positive probability = margin * scale + offset."""
        pos = self._positive()
        if self.calibrated():
            return 1.0 / self.temperature, float(self.shift[pos] - self.shift[1 - pos])
        return 1.0, -self._argmax_cut(class_counts, posthoc_tau)

    def _argmax_cut(self, class_counts: Tensor, posthoc_tau: float) -> float:
        """argmax of logits - tau * log pi picks the positive class iff margin >= this."""
        if not posthoc_tau:
            return 0.0
        prior = log_prior(class_counts.detach().cpu())
        pos = self._positive()
        return float(posthoc_tau) * float(prior[pos] - prior[1 - pos])

    def threshold(self, class_counts: Tensor, posthoc_tau: float) -> float | None:
        """The decision as a threshold on the written probability of the positive class."""
        if not self.binary:
            return None
        scale, offset = self._log_odds_offset(class_counts, posthoc_tau)
        cut = self.cut if self.cut is not None else self._argmax_cut(class_counts, posthoc_tau)
        return _sigmoid(cut * scale + offset)

    def set_threshold(self, threshold: float, class_counts: Tensor, posthoc_tau: float) -> None:
        """Use `threshold` on the written probability of the positive class (eval/predict override)."""
        if not self.binary:
            raise UserError(
                f"decision.threshold={threshold} needs a binary problem; this model has "
                f"{self.num_classes} classes (multiclass decisions are the argmax)"
            )
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold < 1:
            raise UserError(f"decision.threshold={threshold!r} is invalid; allowed: a probability in (0, 1)")
        if self.positive is None:
            self.positive = positive_class(class_counts.detach().cpu().numpy())
        scale, offset = self._log_odds_offset(class_counts, posthoc_tau)
        self.cut = (_logit(float(threshold)) - offset) / scale
        self.rule_used = "threshold"
        self.validation = {}

    # ---- checkpoint and report ------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "settings": self.settings.as_dict(),
            "calibration": self.calibration,
            "sampler_q": self.sampler_q,
            "temperature": self.temperature,
            "shift": None if self.shift is None else [float(v) for v in self.shift],
            "calibration_method": self.calibration_method,
            "cut": self.cut,
            "positive": self.positive,
            "rule_used": self.rule_used,
            "validation": dict(self.validation),
        }

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        self.reset_fit()
        if not self.configured:  # eval / predict: the settings the checkpoint was trained with
            state_settings = (state or {}).get("settings")
            self.settings = DecisionSettings(**state_settings) if state_settings else DecisionSettings()
            # a checkpoint from before the policy: raw softmax and argmax
            self.calibration = (state or {}).get("calibration", "none")
            self.sampler_q = (state or {}).get("sampler_q")
        if not state:
            return
        self.temperature = float(state.get("temperature", 1.0))
        shift = state.get("shift")
        if shift is not None and len(shift) == self.num_classes:
            self.shift = torch.tensor(shift, dtype=torch.float32)
        self.calibration_method = state.get("calibration_method", "none")
        self.cut = None if state.get("cut") is None else float(state["cut"])
        self.positive = state.get("positive")
        self.rule_used = state.get("rule_used", "argmax")
        self.validation = dict(state.get("validation") or {})

    def report(self, class_names: list[str], class_counts: Tensor, posthoc_tau: float) -> dict[str, Any]:
        """The keys metrics.json gets: decision and calibration."""
        self.know_counts(class_counts)
        positive = self._positive()
        return {
            "decision_rule": self.rule_used,
            "decision_threshold": self.threshold(class_counts, posthoc_tau),
            "positive_class": class_names[positive] if self.binary else None,
            "calibration": self.calibration_method if self.calibrated() else "none",
            "calibration_temperature": self.temperature if self.calibrated() else None,
        }


def gather_rows(module: Any, *tensors: Tensor) -> list[Tensor]:
    """Concatenate per-rank tensors (rows may differ by rank) on every rank, rank by rank."""
    trainer = getattr(module, "_trainer", None)
    if trainer is None or trainer.world_size == 1:
        return list(tensors)
    size = torch.tensor([len(tensors[0])], device=tensors[0].device)
    sizes = [int(n) for n in module.all_gather(size).flatten().tolist()]
    longest = max(sizes)
    gathered = []
    for tensor in tensors:
        padded = tensor.new_zeros((longest, *tensor.shape[1:]))
        padded[: len(tensor)] = tensor
        every = module.all_gather(padded)  # (world, longest, ...)
        gathered.append(torch.cat([every[rank, :n] for rank, n in enumerate(sizes)]))
    return gathered
