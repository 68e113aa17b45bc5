"""Small tables for the tabular tests: string labels, a numeric signal, a text column."""

from __future__ import annotations

import numpy as np
import pandas as pd

CLASSES = ("alpha", "beta", "gamma")


def make_table(
    rows: int = 300, seed: int = 0, shares: tuple[float, ...] = (0.65, 0.25, 0.10)
) -> pd.DataFrame:
    """Long-tailed string labels; `signal` separates the classes, `color` is a text feature."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(CLASSES, size=rows, p=list(shares))
    centre = {name: 3.0 * i for i, name in enumerate(CLASSES)}
    return pd.DataFrame(
        {
            "signal": [rng.normal(centre[label]) for label in labels],
            "noise": rng.normal(size=rows),
            "color": rng.choice(["red", "green", "blue"], size=rows),
            "flag": rng.random(rows) < 0.5,
            "label": labels,
        }
    )
