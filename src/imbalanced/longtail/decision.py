"""Decision thresholds for binary problems, chosen on the validation split.

A binary decision is a cut on the logit margin `r = z_pos - z_neg` (positive iff r >= cut), where
`pos` is the minority class of the training split. Every probability this template writes for the
positive class is a monotone function of r, so one cut is one threshold on whichever probability is
shown (calibrated or raw; `prediction_policy.py` converts). Rules (`decision.rule`):

- `argmax`: the model's own decision (with `posthoc_tau`), as for multiclass problems;
- `max_f1`: the cut with the best F1 of the positive class on validation (default for 2 classes);
- `cost`: the cut with the least `cost_fn * FN + cost_fp * FP` on validation;
- `recall_at`: among cuts with recall >= `target`, the one with the best precision;
- `precision_at`: among cuts with precision >= `target`, the one with the best recall; when no cut
  reaches it, the best reachable precision is used and the run stops after training (one line).

Candidate cuts lie halfway between consecutive distinct validation margins, so no validation sample
sits on the threshold and ties cannot flip between runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from imbalanced.errors import UserError

RULES = ("auto", "argmax", "max_f1", "cost", "recall_at", "precision_at")
BINARY_RULES = ("max_f1", "cost", "recall_at", "precision_at")
TARGET_RULES = ("recall_at", "precision_at")


@dataclass(frozen=True)
class DecisionSettings:
    """`decision.*` of the train config."""

    rule: str = "auto"
    cost_fn: float = 1.0
    cost_fp: float = 1.0
    target: float | None = None

    def resolved_rule(self, num_classes: int) -> str:
        """`auto` is `max_f1` for two classes and `argmax` otherwise."""
        if self.rule == "auto":
            return "max_f1" if num_classes == 2 else "argmax"
        return self.rule

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _positive_number(key: str, value: Any) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise UserError(f"{key}={value!r} is invalid; allowed: a finite number > 0")
    return float(value)


def decision_settings(node: Mapping[str, Any] | None) -> DecisionSettings:
    """Validate `decision.*` (one-line UserError naming the key) before any data is loaded."""
    node = dict(node or {})
    rule = node.get("rule", "auto")
    if rule not in RULES:
        raise UserError(f"decision.rule={rule!r} is invalid; allowed: one of {', '.join(RULES)}")
    cost_fn = _positive_number("decision.cost_fn", node.get("cost_fn", 1.0))
    cost_fp = _positive_number("decision.cost_fp", node.get("cost_fp", 1.0))
    target = node.get("target")
    if rule in TARGET_RULES:
        if isinstance(target, bool) or not isinstance(target, (int, float)) or not 0 < target <= 1:
            raise UserError(
                f"decision.target={target!r} is invalid for decision.rule={rule}; allowed: a number in "
                f"(0, 1], the {rule.split('_')[0]} to reach on validation (e.g. decision.target=0.9)"
            )
        target = float(target)
    return DecisionSettings(rule=rule, cost_fn=cost_fn, cost_fp=cost_fp, target=target)


def positive_class(class_counts: Any) -> int:
    """The minority class of the training split (ties: the higher index, i.e. class 1 of 2)."""
    counts = np.asarray(class_counts, dtype=np.float64)
    return int(len(counts) - 1 - np.argmin(counts[::-1]))


def check_rule_for_data(
    settings: DecisionSettings, num_classes: int, val_labels: Any | None, positive: int
) -> None:
    """The checks that need the data but not a model: run after the data is set up, before training."""
    if settings.rule in BINARY_RULES and num_classes != 2:
        raise UserError(
            f"decision.rule={settings.rule} needs a binary problem; this data has {num_classes} classes "
            "(use decision.rule=argmax or auto)"
        )
    if settings.rule in BINARY_RULES and val_labels is not None:
        labels = np.asarray(val_labels)
        positives = int((labels == positive).sum())
        if positives == 0 or positives == len(labels):
            raise UserError(
                f"decision.rule={settings.rule} is chosen on validation, but the validation split has "
                f"{positives} of {len(labels)} samples in the minority class; raise data.val_fraction "
                "or use decision.rule=argmax"
            )


@dataclass
class ThresholdChoice:
    """The cut on the margin and what it gives on validation."""

    cut: float
    precision: float | None
    recall: float
    f1: float
    cost: float
    reachable: bool = True
    note: str = ""


def operating_points(margins: np.ndarray, positive: np.ndarray) -> dict[str, np.ndarray]:
    """Every distinct decision on validation, from the highest cut (nothing positive) down.

    Returns arrays `cut`, `tp`, `fp`, `fn`: predicting positive where margin >= cut.
    """
    margins = np.asarray(margins, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    values = np.unique(margins)[::-1]  # distinct, descending
    pos_sorted = np.sort(margins[positive])
    neg_sorted = np.sort(margins[~positive])
    tp = len(pos_sorted) - np.searchsorted(pos_sorted, values, side="left")
    fp = len(neg_sorted) - np.searchsorted(neg_sorted, values, side="left")
    below = np.append(values[1:], values[-1] - 2.0)
    cuts = (values + below) / 2.0  # halfway to the next lower margin
    return {
        "cut": np.concatenate([[values[0] + 1.0], cuts]),
        "tp": np.concatenate([[0], tp]).astype(np.float64),
        "fp": np.concatenate([[0], fp]).astype(np.float64),
        "fn": np.concatenate([[len(pos_sorted)], len(pos_sorted) - tp]).astype(np.float64),
    }


def choose_threshold(
    margins: Any, positive: Any, settings: DecisionSettings, rule: str
) -> ThresholdChoice | None:
    """The cut `rule` picks on validation; None when validation lacks positives or negatives."""
    positive = np.asarray(positive, dtype=bool)
    if positive.all() or not positive.any():
        return None
    points = operating_points(np.asarray(margins), positive)
    tp, fp, fn = points["tp"], points["fp"], points["fn"]
    flagged = tp + fp
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(flagged > 0, tp / np.maximum(flagged, 1), np.nan)
    recall = tp / (tp + fn)
    f1 = 2 * tp / (2 * tp + fp + fn)
    cost = settings.cost_fn * fn + settings.cost_fp * fp
    reachable, note = True, ""
    # np.argmax / argmin return the first best: the highest cut among equals (fewest flagged)
    if rule == "max_f1":
        index = int(np.argmax(f1))
    elif rule == "cost":
        index = int(np.argmin(cost))
    elif rule == "recall_at":
        feasible = recall >= settings.target - 1e-12
        index = int(np.argmax(np.where(feasible, np.nan_to_num(precision, nan=-1.0), -2.0)))
    elif rule == "precision_at":
        feasible = np.nan_to_num(precision, nan=-1.0) >= settings.target - 1e-12
        if feasible.any():
            index = int(np.argmax(np.where(feasible, recall, -1.0)))
        else:
            index = int(np.argmax(np.nan_to_num(precision, nan=-1.0)))
            reachable = False
            note = (
                f"validation reaches at most precision {precision[index]:.4f} (at recall {recall[index]:.4f})"
            )
    else:
        raise ValueError(f"no threshold for rule {rule!r}")
    best_precision = None if np.isnan(precision[index]) else float(precision[index])
    return ThresholdChoice(
        cut=float(points["cut"][index]),
        precision=best_precision,
        recall=float(recall[index]),
        f1=float(f1[index]),
        cost=float(cost[index]),
        reachable=reachable,
        note=note,
    )
