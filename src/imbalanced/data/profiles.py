"""Imbalance profiles: how many samples each class gets."""

from __future__ import annotations

import numpy as np

PROFILES = ("exponential", "step", "uniform")


def long_tail_counts(
    n_max: int, num_classes: int, imbalance_ratio: float, profile: str = "exponential",
    step_fraction: float = 0.5,
) -> np.ndarray:
    """Per-class counts with class 0 the largest (n_max) and the rarest n_max / imbalance_ratio.

    exponential: n_i = n_max * ratio^(-i/(C-1))  (the CIFAR-LT construction, Cao et al. 2019).
    step: the last `step_fraction` of the classes get n_max / ratio, the others n_max.
    uniform: every class gets n_max.
    """
    if profile not in PROFILES:
        raise ValueError(f"data.profile={profile!r} is unknown; valid: {', '.join(PROFILES)}")
    if num_classes < 2:
        raise ValueError(f"data.num_classes={num_classes} must be at least 2")
    if not imbalance_ratio >= 1:
        raise ValueError(f"data.imbalance_ratio={imbalance_ratio} must be >= 1 (1 means balanced)")
    if not 0 < step_fraction < 1:
        raise ValueError(f"data.step_fraction={step_fraction} must be in (0, 1)")
    i = np.arange(num_classes)
    if profile == "exponential":
        counts = n_max * imbalance_ratio ** (-i / (num_classes - 1))
    elif profile == "step":
        n_minor = int(round(num_classes * step_fraction))
        counts = np.where(i >= num_classes - n_minor, n_max / imbalance_ratio, n_max)
    else:
        counts = np.full(num_classes, float(n_max))
    return np.maximum(np.floor(counts + 1e-9).astype(np.int64), 1)
