"""Run-directory files: metrics.json and class_weights.json (the public contract)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from imbalanced.metrics import SCALAR_METRICS, per_class_f1_key, per_class_key


def _number(value: Any) -> float | None:
    number = float(value.item() if hasattr(value, "item") else value)
    return number if math.isfinite(number) else None


def metrics_report(
    results: Mapping[str, Mapping[str, Any]], class_names: Sequence[str]
) -> dict[str, Any]:
    """Flat metrics.json content from logged results per stage ({"val": {...}, "test": {...}})."""
    report: dict[str, Any] = {"class_names": list(class_names)}
    for stage, logged in results.items():
        for name in SCALAR_METRICS:
            key = f"{stage}/{name}"
            if key in logged:
                report[key] = _number(logged[key])
        report[f"{stage}/per_class_recall"] = [
            _number(logged[per_class_key(stage, i)]) if per_class_key(stage, i) in logged else None
            for i in range(len(class_names))
        ]
        if per_class_f1_key(stage, 0) in logged:  # logged by callbacks.TestClassStats
            report[f"{stage}/per_class_f1"] = [
                _number(logged[per_class_f1_key(stage, i)]) for i in range(len(class_names))
            ]
    return report


def write_json(path: str | Path, content: Mapping[str, Any]) -> Path:
    """Write atomically (temp file + rename), so an interrupted run never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(json.dumps(content, indent=2) + "\n")
    os.replace(temporary, path)
    return path
