"""The cheaper per-step computations give the values of what they replace, bit for bit; the
validation metrics give torchmetrics' values."""

from __future__ import annotations

import random

import torch
from torchmetrics.classification import MulticlassAUROC, MulticlassAveragePrecision

from imbalanced.callbacks.step_seed import step_seed, step_seeds
from imbalanced.metrics import RareEventMetrics
from imbalanced.runs.safeguards import _all_finite


def _batches(rows: int, classes: int, seed: int, ties: bool, absent: int | None):
    generator = torch.Generator().manual_seed(seed)
    probabilities = (torch.randn(rows, classes, generator=generator) * 2).softmax(-1)
    if ties:  # many equal scores: the curves' tie handling
        probabilities = (probabilities * 20).round() / 20
    labels = torch.randint(0, classes, (rows,), generator=generator)
    if absent is not None:  # a class without validation rows (a rare class, a small split)
        labels[labels == absent] = (absent + 1) % classes
    cut = rows // 3
    return [(probabilities[:cut], labels[:cut]), (probabilities[cut:], labels[cut:])]


def test_rare_event_metrics_of_a_fixed_batch_are_unchanged():
    """RareEventMetrics on a fixed batch (multiclass): the values the torchmetrics objects gave."""
    probabilities, labels = _batches(400, 8, 0, False, None)[1]
    raw = (probabilities.log() * 1.3).softmax(-1)
    metrics = RareEventMetrics(8, prefix="val/")
    metrics.update(probabilities, raw, probabilities.argmax(-1), labels, positive=1)
    values = metrics.compute()
    assert sorted(values) == [
        "val/average_precision",
        "val/brier",
        "val/brier_raw",
        "val/ece",
        "val/ece_raw",
        "val/roc_auc",
    ]
    assert torch.equal(
        values["val/average_precision"],
        MulticlassAveragePrecision(8, average="macro")(probabilities, labels).float(),
    )
    assert torch.equal(
        values["val/roc_auc"], MulticlassAUROC(8, average="macro")(probabilities, labels).float()
    )


def test_step_seeds_equal_seedsequence_seeds():
    rng = random.Random(0)
    for _ in range(200):
        seed, rank, epoch = (rng.choice([0, 1, rng.randrange(2**31), rng.randrange(2**70)]) for _ in range(3))
        count = rng.randrange(0, 30)
        assert step_seeds(seed, rank, epoch, count) == [step_seed(seed, rank, epoch, b) for b in range(count)]


def test_the_weight_check_answers_as_isfinite():
    weights = [torch.randn(50, 4), torch.randn(4), torch.empty(0)]
    assert _all_finite(weights) and _all_finite([])
    assert _all_finite([torch.tensor([3e38]), torch.tensor([1e300], dtype=torch.float64)])  # large, finite
    for bad in (float("nan"), float("inf"), -float("inf")):
        broken = [w.clone() for w in weights]
        broken[0][7, 2] = bad
        assert not _all_finite(broken)
    assert not _all_finite(
        [torch.ones(3, dtype=torch.float16), torch.tensor([float("nan")], dtype=torch.bfloat16)]
    )
