"""Seeded, stratified train/val/test splits (scikit-learn's `train_test_split`)."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split

from imbalanced.errors import UserError
from imbalanced.value_checks import check_int, check_number


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
    x: np.ndarray,
    y: np.ndarray,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    min_train_rows: int = 0,
) -> tuple[np.ndarray, ...]:
    """(x_train, y_train, x_val, y_val, x_test, y_test), stratified by label and seeded; then
    validation gives rows back to classes with fewer than `min_train_rows` training rows.

    Every rank computes the same split from the same seed, so DDP ranks agree on the weights.
    """
    check_fractions(val_fraction, test_fraction)
    rows = np.arange(len(y))
    rest, test = train_test_split(rows, test_size=test_fraction, stratify=y, random_state=seed)
    train, val = train_test_split(
        rest,
        test_size=val_fraction / (1.0 - test_fraction),
        stratify=y[rest],
        random_state=seed,
    )
    train, val = spare_rare_classes(y, train, val, min_train_rows)
    return x[train], y[train], x[val], y[val], x[test], y[test]


def check_min_train_rows(value: int) -> int:
    return check_int("data.min_train_rows", value, minimum=0)


def spare_rare_classes(
    y: np.ndarray, train_rows: np.ndarray, val_rows: np.ndarray, min_train_rows: int
) -> tuple[np.ndarray, np.ndarray]:
    """Move validation rows back to training until each class has `min_train_rows` training rows.

    A stratified split holds out the same share of every class, so a class of 12 rows gives 2 of
    them to validation: a sixth of what the model could learn it from, for a validation score that
    hardly measures it. Validation keeps at least one row of each class it had (the per-class
    recall stays defined); rows move in the split's own seeded order, so the result is seeded too.
    """
    if min_train_rows <= 0 or len(val_rows) == 0:
        return train_rows, val_rows
    train_counts = np.bincount(y[train_rows], minlength=int(y.max()) + 1)
    moved: list[np.ndarray] = []
    keep = np.ones(len(val_rows), dtype=bool)
    for c in np.unique(y[val_rows]):
        in_val = np.flatnonzero(y[val_rows] == c)
        wanted = min(min_train_rows - int(train_counts[c]), len(in_val) - 1)
        if wanted > 0:
            keep[in_val[:wanted]] = False
            moved.append(val_rows[in_val[:wanted]])
    if not moved:
        return train_rows, val_rows
    return np.concatenate([train_rows, *moved]), val_rows[keep]


def split_file_rows(
    y: np.ndarray,
    class_names: list[str],
    automatic: dict[str, float],
    seed: int,
    min_train_rows: int,
    source: str,
    unit: str = "rows",
    fixed_settings: str = "data.val_path / data.test_path",
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Row indices (train, val, test) of a user's file or folder, stratified and seeded.

    `automatic` maps the splits cut from it ("val", "test") to their fractions, cut in that order;
    a split left out is given by a fixed file and comes back as None. Each class needs one row per
    split cut (a UserError names the classes that lack them), and validation gives rows back to
    classes with fewer than `min_train_rows` training rows (`spare_rare_classes`). `source` (e.g.
    "data.path=FILE"), `unit` and `fixed_settings` are how the errors name the data, its items and
    the settings that give fixed splits instead.
    """
    counts = np.bincount(y, minlength=len(class_names))
    needed = 1 + len(automatic)
    named = [name for name in ("val", "test") if name in automatic]
    rare = {class_names[i]: int(n) for i, n in enumerate(counts) if n < needed}
    if rare:
        raise UserError(
            f"{source}: class(es) {rare} (class: {unit}) are too rare for a stratified "
            f"{'/'.join(['train', *named])} split: each class needs at least {needed} {unit} (one for "
            f"each of {' and '.join(['train', *named])}). Add {unit}, drop or merge these classes, "
            f"or give fixed splits with {fixed_settings}"
        )
    rows = np.arange(len(y))
    parts: dict[str, np.ndarray | None] = {"val": None, "test": None}
    rest, rest_fraction = rows, 1.0
    settings = ", ".join(f"data.{name}_fraction={automatic[name]}" for name in named)
    try:
        for name, fraction in automatic.items():
            rest, parts[name] = train_test_split(
                rest, test_size=fraction / rest_fraction, stratify=y[rest], random_state=seed
            )
            rest_fraction -= fraction
    except ValueError as error:
        raise UserError(
            f"{source}: cannot make a stratified split with {settings}: {error}. "
            f"Use more {unit} or larger fractions, or give {fixed_settings}"
        ) from None
    if parts["val"] is not None:
        rest, parts["val"] = spare_rare_classes(y, rest, parts["val"], min_train_rows)
    absent = [class_names[c] for c in range(len(class_names)) if not np.any(y[rest] == c)]
    if absent:  # rounding gave all of a tiny class to val/test
        raise UserError(
            f"{source}: class(es) {absent} got no training {unit} from the stratified "
            f"split with {settings}; add {unit} of these classes, lower the fractions, or give "
            f"{fixed_settings}"
        )
    return rest, parts["val"], parts["test"]
