"""What the model needs from the data about the classes: one object, computed from labels alone.

`ClassStatistics` holds the class names, the training split's per-class counts and the class
weights of the configured strategy. A datamodule builds it in `setup` from its training labels
(never by loading samples) and exposes it as `datamodule.class_statistics`; the LightningModule
copies counts and weights into its buffers, and `class_weights.json` is written from it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from imbalanced.longtail.weights import class_counts, compute_class_weights, strategy_name, strategy_settings


@dataclass(frozen=True)
class ClassStatistics:
    """Class names, training-split counts (int64) and class weights (float64), in class order."""

    class_names: list[str]
    counts: np.ndarray
    weights: np.ndarray
    strategy: str = "none"
    settings: dict[str, Any] = field(default_factory=dict)  # the strategy's settings, e.g. beta

    def __post_init__(self) -> None:
        sizes = {len(self.class_names), len(self.counts), len(self.weights)}
        if len(sizes) != 1:
            raise ValueError(
                f"{len(self.class_names)} class names, {len(self.counts)} counts and "
                f"{len(self.weights)} weights: one of each per class is needed"
            )

    @classmethod
    def from_labels(
        cls,
        labels: Sequence[int] | np.ndarray,
        class_names: Sequence[str],
        weight_settings: Mapping[str, Any] | None = None,
    ) -> ClassStatistics:
        """Count the integer `labels` (0..C-1) of the training split and weight the classes.

        `weight_settings` is the `class_weights` config (a `_target_` and its settings).
        """
        names = [str(name) for name in class_names]
        settings = dict(weight_settings or {"strategy": "none"})
        counts = class_counts(np.asarray(labels), len(names)).astype(np.int64)
        weights = compute_class_weights(counts, settings, class_names=names)
        return cls(
            class_names=names,
            counts=counts,
            weights=np.asarray(weights, dtype=np.float64),
            strategy=strategy_name(settings),
            settings=strategy_settings(settings),
        )

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def report(self) -> dict[str, Any]:
        """The content of `class_weights.json`."""
        return {
            "strategy": self.strategy,
            "settings": dict(self.settings),
            "class_names": list(self.class_names),
            "counts": [int(c) for c in self.counts],
            "weights": [float(w) for w in self.weights],
        }
