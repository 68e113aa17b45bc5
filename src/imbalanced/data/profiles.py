"""Imbalance profiles: how many samples each class gets."""

from __future__ import annotations

import numpy as np

from imbalanced.value_checks import check_choice, check_int, check_number

PROFILES = ("exponential", "step", "uniform")


def check_profile(num_classes: int, imbalance_ratio: float, profile: str, step_fraction: float = 0.5) -> None:
    """The settings of an imbalance profile (`data.*` keys); UserError naming the first bad one."""
    check_int("data.num_classes", num_classes, minimum=2)
    check_number("data.imbalance_ratio", imbalance_ratio, low=1.0)
    check_choice("data.profile", profile, PROFILES)
    check_number("data.step_fraction", step_fraction, 0.0, 1.0, low_open=True, high_open=True)


def long_tail_counts(
    n_max: int,
    num_classes: int,
    imbalance_ratio: float,
    profile: str = "exponential",
    step_fraction: float = 0.5,
) -> np.ndarray:
    """Per-class counts with class 0 the largest (n_max) and the rarest n_max / imbalance_ratio.

    exponential: n_i = n_max * ratio^(-i/(C-1))  (the CIFAR-LT construction, Cao et al. 2019).
    step: the last `step_fraction` of the classes get n_max / ratio, the others n_max.
    uniform: every class gets n_max.
    """
    check_profile(num_classes, imbalance_ratio, profile, step_fraction)
    i = np.arange(num_classes)
    if profile == "exponential":
        counts = n_max * imbalance_ratio ** (-i / (num_classes - 1))
    elif profile == "step":
        n_minor = int(round(num_classes * step_fraction))
        counts = np.where(i >= num_classes - n_minor, n_max / imbalance_ratio, n_max)
    else:
        counts = np.full(num_classes, float(n_max))
    return np.maximum(np.floor(counts + 1e-9).astype(np.int64), 1)
