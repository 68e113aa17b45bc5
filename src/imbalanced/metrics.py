"""Epoch-level classification metrics (torchmetrics objects, so they sync across DDP ranks)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import (
    BinaryAUROC,
    BinaryAveragePrecision,
    BinaryF1Score,
    BinaryPrecision,
    BinaryRecall,
    MulticlassAccuracy,
    MulticlassAUROC,
    MulticlassAveragePrecision,
    MulticlassCalibrationError,
    MulticlassF1Score,
    MulticlassRecall,
)

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


# ---- rare events ---------------------------------------------------------------------------------
RARE_EVENT_METRICS = (
    "average_precision",
    "roc_auc",
    "ece",
    "ece_raw",
    "brier",
    "brier_raw",
    "precision",
    "recall",
    "f1",
)
ECE_BINS = 15


class BrierScore(Metric):
    """Mean squared error of the probabilities (DDP: sums and counts are all-reduced).

    Binary (`positive` given): mean (p_positive - 1[y = positive])^2, scikit-learn's
    `brier_score_loss`. Multiclass: mean over samples of sum_c (p_c - 1[y = c])^2 (Brier 1950).
    """

    full_state_update = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("squared", default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("total", default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, probabilities: Tensor, target: Tensor, positive: int | None = None) -> None:
        probabilities = probabilities.double()
        if positive is not None:
            errors = (probabilities[:, positive] - (target == positive).double()) ** 2
        else:
            onehot = torch.nn.functional.one_hot(target, probabilities.shape[1]).double()
            errors = ((probabilities - onehot) ** 2).sum(dim=1)
        self.squared += errors.sum()
        self.total += errors.numel()

    def compute(self) -> Tensor:
        return self.squared / self.total


class RareEventMetrics(nn.Module):
    """Average precision, ROC-AUC, ECE (top-label, 15 bins) and Brier score; for two classes also
    precision / recall / F1 of the positive (minority) class at the decision in use.

    Binary: AP and ROC-AUC of the minority class; multiclass: macro one-vs-rest. `ece` / `brier` are
    of the probabilities the run writes (calibrated), `ece_raw` / `brier_raw` of the raw softmax.
    All are torchmetrics objects, so `compute()` syncs across DDP ranks.
    """

    def __init__(self, num_classes: int, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix
        self.binary = num_classes == 2
        if self.binary:
            ranking = {"average_precision": BinaryAveragePrecision(), "roc_auc": BinaryAUROC()}
            self.at_threshold = MetricCollection(
                {"precision": BinaryPrecision(), "recall": BinaryRecall(), "f1": BinaryF1Score()}
            )
        else:
            ranking = {
                "average_precision": MulticlassAveragePrecision(num_classes, average="macro"),
                "roc_auc": MulticlassAUROC(num_classes, average="macro"),
            }
        self.ranking = MetricCollection(ranking)
        self.ece = MulticlassCalibrationError(num_classes, n_bins=ECE_BINS, norm="l1")
        self.ece_raw = MulticlassCalibrationError(num_classes, n_bins=ECE_BINS, norm="l1")
        self.brier = BrierScore()
        self.brier_raw = BrierScore()

    def update(
        self,
        probabilities: Tensor,
        raw_probabilities: Tensor,
        decisions: Tensor,
        target: Tensor,
        positive: int,
    ) -> None:
        probabilities, raw_probabilities = probabilities.float(), raw_probabilities.float()
        if self.binary:
            is_positive = (target == positive).long()
            self.ranking.update(probabilities[:, positive], is_positive)
            self.at_threshold.update((decisions == positive).long(), is_positive)
        else:
            self.ranking.update(probabilities, target)
        self.ece.update(probabilities, target)
        self.ece_raw.update(raw_probabilities, target)
        binary_positive = positive if self.binary else None
        self.brier.update(probabilities, target, binary_positive)
        self.brier_raw.update(raw_probabilities, target, binary_positive)

    def compute(self) -> dict[str, Tensor]:
        values = dict(self.ranking.compute())
        if self.binary:
            values.update(self.at_threshold.compute())
        for name in ("ece", "ece_raw", "brier", "brier_raw"):
            values[name] = getattr(self, name).compute()
        return {f"{self.prefix}{name}": value.float() for name, value in values.items()}

    def reset(self) -> None:
        for metric in (self.ranking, self.ece, self.ece_raw, self.brier, self.brier_raw):
            metric.reset()
        if self.binary:
            self.at_threshold.reset()
