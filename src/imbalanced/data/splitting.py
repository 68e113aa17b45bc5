"""Seeded, stratified train/val/test splits (scikit-learn's `train_test_split`)."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split

from imbalanced.checks import check_number
from imbalanced.errors import UserError


def check_fraction(key: str, value: float) -> None:
    check_number(key, value, 0.0, 1.0, low_open=True, high_open=True)


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    check_fraction("data.val_fraction", val_fraction)
    check_fraction("data.test_fraction", test_fraction)
    if val_fraction + test_fraction >= 1.0:
        raise UserError(
            f"data.val_fraction + data.test_fraction = {val_fraction + test_fraction:g} is invalid; "
            "allowed: a sum < 1 (the rest is the training split)"
        )


def stratified_split(
    x: np.ndarray, y: np.ndarray, val_fraction: float, test_fraction: float, seed: int
) -> tuple[np.ndarray, ...]:
    """(x_train, y_train, x_val, y_val, x_test, y_test), stratified by label and seeded.

    Every rank computes the same split from the same seed, so DDP ranks agree on the weights.
    """
    check_fractions(val_fraction, test_fraction)
    x_rest, x_test, y_rest, y_test = train_test_split(
        x, y, test_size=test_fraction, stratify=y, random_state=seed
    )
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=val_fraction / (1.0 - test_fraction), stratify=y_rest,
        random_state=seed,
    )
    return x_train, y_train, x_val, y_val, x_test, y_test
