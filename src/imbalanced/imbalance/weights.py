"""Class-weight strategies: pure functions from training-split class counts to weights.

Every formula and its normalization lives here, and only here:

| strategy           | weight of class c                               | normalization             |
|--------------------|-------------------------------------------------|---------------------------|
| `none`             | 1                                               | none (all ones)           |
| `balanced`         | N / (C * n_c)  (scikit-learn's formula)         | sum_c w_c * n_c = N       |
| `inverse`          | 1 / n_c                                         | sum_c w_c = C             |
| `inverse_sqrt`     | 1 / sqrt(n_c)                                   | sum_c w_c = C             |
| `effective_number` | (1 - beta) / (1 - beta^n_c)  (Cui et al. 2019)  | sum_c w_c = C (the paper) |
| `manual`           | the list given                                  | none (used as given)      |

`balanced` makes the mean per-sample weight over the training split 1; the others make the mean
per-class weight 1.

N is the number of training samples, C the number of classes, n_c the training count of class c.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from imbalanced.errors import UserError

STRATEGIES = ("none", "balanced", "inverse", "inverse_sqrt", "effective_number", "manual")


class ClassWeightError(UserError):
    """A class-weight setting or the class counts it needs are invalid."""


def _sum_to_num_classes(raw: np.ndarray) -> np.ndarray:
    return raw * (len(raw) / raw.sum())


def _require_present(counts: np.ndarray, class_names: Sequence[str] | None, strategy: str) -> None:
    missing = np.flatnonzero(counts <= 0)
    if missing.size:
        names = [str(class_names[i]) if class_names is not None else str(i) for i in missing]
        raise ClassWeightError(
            f"class_weights.strategy={strategy} needs every class in the training split, but "
            f"class(es) {names} have 0 training samples. Add samples of these classes to the "
            "training data, or use class_weights=none or class_weights=manual."
        )


def validate_weight_settings(
    strategy: str, beta: float | None = None, weights: Sequence[float] | None = None,
    num_classes: int | None = None,
) -> None:
    """Check a strategy's settings without needing any data; raises ClassWeightError."""
    if strategy not in STRATEGIES:
        raise ClassWeightError(
            f"class_weights.strategy={strategy!r} is unknown; valid: {', '.join(STRATEGIES)}"
        )
    if strategy == "effective_number":
        if beta is None or isinstance(beta, bool) or not isinstance(beta, (int, float)):
            raise ClassWeightError(f"class_weights.beta={beta!r} must be a number in [0, 1)")
        if not (0.0 <= float(beta) < 1.0):
            raise ClassWeightError(f"class_weights.beta={beta} is outside [0, 1); use e.g. 0.999")
    if strategy == "manual":
        if weights is None or isinstance(weights, (str, bytes)):
            raise ClassWeightError(
                "class_weights=manual needs a list: class_weights.weights=[w0,w1,...], one "
                "non-negative number per class"
            )
        try:
            values = [float(w) for w in weights]
        except (TypeError, ValueError):
            raise ClassWeightError(
                f"class_weights.weights={list(weights)} must be a list of numbers"
            ) from None
        bad = [w for w in values if not math.isfinite(w) or w < 0]
        if bad:
            raise ClassWeightError(
                f"class_weights.weights={values} has negative or non-finite values {bad}; "
                "every weight must be a finite number >= 0"
            )
        if num_classes is not None and len(values) != num_classes:
            raise ClassWeightError(
                f"class_weights.weights has {len(values)} values but the data has {num_classes} "
                "classes; give exactly one weight per class"
            )
        if values and sum(values) == 0:
            raise ClassWeightError("class_weights.weights are all zero; at least one must be > 0")


def compute_class_weights(
    counts: Sequence[int] | np.ndarray,
    strategy: str = "balanced",
    beta: float = 0.999,
    weights: Sequence[float] | None = None,
    class_names: Sequence[str] | None = None,
) -> np.ndarray:
    """Weights (float64, one per class) for the training-split `counts` under `strategy`."""
    counts = np.asarray(counts, dtype=np.float64)
    validate_weight_settings(strategy, beta=beta, weights=weights, num_classes=len(counts))
    if strategy == "none":
        return np.ones_like(counts)
    if strategy == "manual":
        return np.asarray([float(w) for w in weights], dtype=np.float64)
    _require_present(counts, class_names, strategy)
    if strategy == "balanced":
        return counts.sum() / (len(counts) * counts)
    if strategy == "inverse":
        return _sum_to_num_classes(1.0 / counts)
    if strategy == "inverse_sqrt":
        return _sum_to_num_classes(1.0 / np.sqrt(counts))
    # effective_number; beta=0 gives E_n = 1 for every class, i.e. uniform weights.
    effective = -np.expm1(counts * math.log(beta)) / (1.0 - beta) if beta > 0 else np.ones_like(counts)
    return _sum_to_num_classes(1.0 / effective)


def class_counts(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Count integer labels 0..num_classes-1 without touching any sample (O(N), one pass)."""
    return np.bincount(np.asarray(labels).ravel(), minlength=num_classes)[:num_classes]
