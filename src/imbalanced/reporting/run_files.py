"""Run-directory files: metrics.json and class_weights.json (the public contract)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from imbalanced.metrics import RARE_EVENT_METRICS, SCALAR_METRICS, per_class_f1_key, per_class_key
from imbalanced.runs.atomic_writes import write_text_atomic


def _number(value: Any) -> float | None:
    number = float(value.item() if hasattr(value, "item") else value)
    return number if math.isfinite(number) else None


def frequency_groups(class_counts: Sequence[float]) -> dict[str, list[int]]:
    """Head / medium / tail classes by training count.

    Rule: rank the classes by training count (largest first, ties by class index) and cut the
    ranking into three near-equal parts (`numpy.array_split`: the head gets the remainder first,
    so 10 classes -> 4 / 3 / 3). With 2 classes: head = the larger, tail = the smaller, no medium.
    """
    counts = np.asarray(class_counts, dtype=np.float64)
    order = sorted(range(len(counts)), key=lambda i: (-counts[i], i))
    if len(order) < 3:
        return {"head": order[:1], "medium": [], "tail": order[1:]}
    head, medium, tail = (part.tolist() for part in np.array_split(np.asarray(order), 3))
    return {"head": head, "medium": medium, "tail": tail}


def group_recalls(
    stage: str, per_class: Sequence[float | None], groups: Mapping[str, Sequence[int]]
) -> dict[str, float | None]:
    """`{stage}/head_recall` etc.: the mean recall of each group's classes (None if empty)."""
    out: dict[str, float | None] = {}
    for name, members in groups.items():
        values = [per_class[i] for i in members if per_class[i] is not None]
        out[f"{stage}/{name}_recall"] = float(np.mean(values)) if values else None
    return out


def metrics_report(
    results: Mapping[str, Mapping[str, Any]],
    class_names: Sequence[str],
    class_counts: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Flat metrics.json content from logged results per stage ({"val": {...}, "test": {...}}).

    With the training `class_counts`, adds `{stage}/head_recall`, `/medium_recall`, `/tail_recall`
    and the `head_classes` / `medium_classes` / `tail_classes` names (see `frequency_groups`).
    """
    report: dict[str, Any] = {"class_names": list(class_names)}
    groups = frequency_groups(class_counts) if class_counts is not None else None
    if groups is not None:
        report.update(
            {f"{name}_classes": [class_names[i] for i in members] for name, members in groups.items()}
        )
    for stage, logged in results.items():
        for name in SCALAR_METRICS + RARE_EVENT_METRICS:
            key = f"{stage}/{name}"
            if key in logged:
                report[key] = _number(logged[key])
        report[f"{stage}/per_class_recall"] = [
            _number(logged[per_class_key(stage, i)]) if per_class_key(stage, i) in logged else None
            for i in range(len(class_names))
        ]
        if per_class_f1_key(stage, 0) in logged:  # logged by callbacks.PerClassTestStats
            report[f"{stage}/per_class_f1"] = [
                _number(logged[per_class_f1_key(stage, i)]) for i in range(len(class_names))
            ]
        if groups is not None:
            report.update(group_recalls(stage, report[f"{stage}/per_class_recall"], groups))
    return report


def write_json(path: str | Path, content: Mapping[str, Any]) -> Path:
    """Write atomically (unique temp file + rename), so an interrupted run never leaves half a file."""
    return write_text_atomic(path, json.dumps(content, indent=2) + "\n")
