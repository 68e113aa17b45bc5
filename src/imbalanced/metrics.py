"""Epoch-level classification metrics (torchmetrics objects, so they sync across DDP ranks)."""

from __future__ import annotations

from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score, MulticlassRecall

SCALAR_METRICS = ("accuracy", "balanced_accuracy", "macro_f1")


def classification_metrics(num_classes: int) -> MetricCollection:
    """accuracy (micro), balanced accuracy (= macro recall), macro-F1, per-class recall.

    torchmetrics defaults to `average="micro"`, i.e. plain accuracy, which hides minority classes;
    every average here is explicit. The collection shares one set of stat scores (compute groups).
    """
    return MetricCollection(
        {
            "accuracy": MulticlassAccuracy(num_classes, average="micro"),
            "balanced_accuracy": MulticlassRecall(num_classes, average="macro"),
            "macro_f1": MulticlassF1Score(num_classes, average="macro"),
            "per_class_recall": MulticlassRecall(num_classes, average="none"),
        }
    )


def per_class_key(stage: str, index: int) -> str:
    """Logged name of one class's recall; metrics.json gathers them into a list."""
    return f"{stage}/recall/{index}"


def per_class_f1_key(stage: str, index: int) -> str:
    """Logged name of one class's F1 (from the test callback); metrics.json gathers them."""
    return f"{stage}/f1/{index}"
