"""Run plots (PNG, headless): confusion matrix, recall against training count, class distribution,
precision-recall curves and the reliability (calibration) diagram.

Every function takes plain sequences/arrays and returns a matplotlib Figure; `save_figure` writes it.
The Agg backend is used through `matplotlib.figure.Figure` directly, so no display is ever needed and
the global pyplot state is never touched.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from imbalanced.runs.atomic_writes import write_with

DPI = 100
MARGIN_INCHES = 0.12


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    # a margin around everything: constrained layout's default puts axis titles ~3 px from the edge,
    # where viewers that crop or round cut them
    figure.get_layout_engine().set(w_pad=MARGIN_INCHES, h_pad=MARGIN_INCHES)
    FigureCanvasAgg(figure)
    return figure


def _tick_step(size: int, readable: int = 50) -> int:
    """Label every k-th class so that at most `readable` labels share an axis (100 classes: 2)."""
    return max(1, math.ceil(size / readable))


def frequency_order(counts: Sequence[float]) -> np.ndarray:
    """Class indices from the most to the least frequent (ties keep class order)."""
    return np.argsort(-np.asarray(counts, dtype=float), kind="stable")


def _labels(class_names: Sequence[str], counts: Sequence[float], order: np.ndarray) -> list[str]:
    return [f"{class_names[i]}\nn={int(counts[i])}" for i in order]


def row_normalize(confusion: np.ndarray) -> np.ndarray:
    """Each row (true class) divided by its total; rows without samples stay zero."""
    confusion = np.asarray(confusion, dtype=float)
    totals = confusion.sum(axis=1, keepdims=True)
    return np.divide(confusion, totals, out=np.zeros_like(confusion), where=totals > 0)


def confusion_matrix_figure(confusion: np.ndarray, class_names: Sequence[str], title: str = "") -> Figure:
    """Confusion matrix normalized by true class: row i shows where class i's samples went."""
    normalized = row_normalize(confusion)
    size = len(class_names)
    side = min(max(4.0, 0.6 * size + 2.5), 14.0)
    figure = _figure(side + 1.0, side)
    axes = figure.add_subplot()
    # aspect "auto": with square cells the layout places the y title against the edge (it sizes the
    # cell before imshow shrinks the axes); the figure is near square already
    image = axes.imshow(normalized, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="share of the true class")
    step = _tick_step(size)
    fontsize = 9 if size <= 20 else 7 if size <= 40 else 6
    shown = list(range(0, size, step))
    axes.set_xticks(
        shown,
        labels=[str(class_names[i]) for i in shown],
        fontsize=fontsize,
        rotation=0 if size <= 8 else 45 if size <= 20 else 90,
        ha="center" if size <= 8 or size > 20 else "right",
    )
    totals = np.asarray(confusion).sum(axis=1)
    axes.set_yticks(
        shown, labels=[f"{class_names[i]} (n={int(totals[i])})" for i in shown], fontsize=fontsize
    )
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")  # short: a 2-class matrix is shorter than a long title; n is per row
    axes.set_title(
        (title or "confusion matrix (normalized by true class)")
        + (f"\n(one label per {step} classes)" if step > 1 else "")
    )
    if size <= 20:
        for row in range(size):
            for column in range(size):
                value = normalized[row, column]
                color = "white" if value > 0.5 else "black"
                axes.text(column, row, f"{value:.2f}", ha="center", va="center", color=color, fontsize=8)
    return figure


def recall_vs_count_figure(
    class_names: Sequence[str],
    counts: Sequence[float],
    recall: Sequence[float | None],
    f1: Sequence[float | None] | None = None,
    title: str = "",
) -> Figure:
    """Per-class test recall (and F1) with classes sorted by training count, counts on a log axis."""
    order = frequency_order(counts)
    positions = np.arange(len(order))
    figure = _figure(max(6.0, 0.55 * len(order) + 3.0), 4.5)
    axes = figure.add_subplot()
    count_axes = axes.twinx()
    count_axes.bar(positions, [counts[i] for i in order], color="0.85", label="training count", zorder=0)
    count_axes.set_yscale("log")
    count_axes.set_ylabel("training count (log scale)")
    axes.set_zorder(count_axes.get_zorder() + 1)
    axes.patch.set_visible(False)

    def values(series: Sequence[float | None]) -> list[float]:
        return [np.nan if series[i] is None else float(series[i]) for i in order]

    axes.plot(positions, values(recall), "o-", color="tab:blue", label="test recall")
    if f1 is not None:
        axes.plot(positions, values(f1), "s--", color="tab:orange", label="test F1")
    axes.set_ylim(0.0, 1.05)
    axes.set_ylabel("score")
    axes.set_xticks(positions, labels=_labels(class_names, counts, order), fontsize=8)
    axes.set_xlabel("class (most to least frequent in training)")
    axes.grid(axis="y", alpha=0.3)
    handles = axes.get_legend_handles_labels()[0] + count_axes.get_legend_handles_labels()[0]
    axes.legend(handles=handles, loc="lower left", fontsize=8)
    axes.set_title(title or "per-class recall against training count")
    return figure


def class_distribution_figure(
    class_names: Sequence[str], counts: Sequence[float], weights: Sequence[float], strategy: str = ""
) -> Figure:
    """Training counts per class (top) and the class weights the loss applies (bottom)."""
    order = frequency_order(counts)
    positions = np.arange(len(order))
    figure = _figure(max(6.0, 0.55 * len(order) + 3.0), 6.0)
    top, bottom = figure.subplots(2, 1, sharex=True)
    ordered_counts = [counts[i] for i in order]
    bars = top.bar(positions, ordered_counts, color="tab:blue")
    top.bar_label(bars, labels=[str(int(c)) for c in ordered_counts], fontsize=7)
    top.set_ylabel("training count")
    top.set_title("training class distribution")
    total = float(np.sum(counts)) or 1.0
    top.set_ylim(0, max(ordered_counts or [1]) * 1.15)
    top.text(
        0.99,
        0.95,
        f"imbalance ratio {max(counts) / max(min(counts), 1):.1f}  (N={int(total)})",
        transform=top.transAxes,
        ha="right",
        va="top",
        fontsize=8,
    )
    ordered_weights = [float(weights[i]) for i in order]
    weight_bars = bottom.bar(positions, ordered_weights, color="tab:orange")
    bottom.bar_label(weight_bars, labels=[f"{w:.3g}" for w in ordered_weights], fontsize=7)
    bottom.set_ylim(0, max(ordered_weights or [1]) * 1.15 or 1.0)
    bottom.set_ylabel("class weight")
    bottom.set_title(f"class weights applied ({strategy})" if strategy else "class weights applied")
    bottom.set_xticks(positions, labels=_labels(class_names, counts, order), fontsize=8)
    bottom.set_xlabel("class (most to least frequent in training)")
    return figure


def pr_curve_classes(
    probabilities: np.ndarray, labels: np.ndarray, counts: Sequence[float], rarest: int = 5, worst: int = 3
) -> list[int]:
    """The classes a multiclass PR plot shows (at most `rarest + worst`): the `rarest` training
    classes, then the `worst` others by test average precision; classes absent from the test split
    are left out (no curve)."""
    from sklearn.metrics import average_precision_score

    labels = np.asarray(labels)
    present = [int(i) for i in frequency_order(counts)[::-1] if (labels == i).any()]
    chosen = present[:rarest]
    others = [i for i in present if i not in chosen]
    ap = {i: average_precision_score(labels == i, np.asarray(probabilities)[:, i]) for i in others}
    return chosen + sorted(others, key=lambda i: (ap[i], i))[:worst]


def pr_curve_figure(
    probabilities: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    counts: Sequence[float],
    positive: int | None = None,
    threshold: float | None = None,
    max_classes: int = 5,
) -> Figure:
    """Precision-recall on the test split. Binary: the positive (minority) class with the decision
    threshold marked; multiclass: one-vs-rest curves of the `max_classes` rarest training classes and
    the three others with the lowest average precision (at most 8 curves, whatever the number of
    classes), each named in the legend, which sits below the axes so it never hides a curve."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    classes = (
        [positive]
        if positive is not None
        else pr_curve_classes(probabilities, labels, counts, rarest=max_classes)
    )
    figure = _figure(6.4, 4.6 + 0.22 * len(classes))
    axes = figure.add_subplot()
    rare = set(list(frequency_order(counts)[::-1][:max_classes]))
    for index in classes:
        truth = np.asarray(labels) == index
        if not truth.any():
            continue
        scores = np.asarray(probabilities)[:, index]
        precision, recall, _ = precision_recall_curve(truth, scores)
        ap = average_precision_score(truth, scores)
        why = "" if positive is not None else (", rare" if index in rare else ", low AP")
        axes.step(
            recall,
            precision,
            where="post",
            label=f"{class_names[index]} (AP {ap:.3f}, {truth.mean():.2%} of test{why})",
        )
        if positive is not None:
            axes.axhline(truth.mean(), color="0.6", linestyle=":", label="chance (prevalence)")
            if threshold is not None:
                flagged = scores >= threshold
                hit = (flagged & truth).sum()
                point_precision = hit / flagged.sum() if flagged.any() else 1.0
                axes.plot(
                    hit / truth.sum(),
                    point_precision,
                    "o",
                    color="tab:red",
                    markersize=8,
                    label=f"decision threshold {threshold:.3g}",
                )
    axes.set_xlim(0.0, 1.0)
    axes.set_ylim(0.0, 1.05)
    axes.set_xlabel("recall")
    axes.set_ylabel("precision")
    axes.grid(alpha=0.3)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), fontsize=8, ncols=1, frameon=False)
    title = (
        "precision-recall (test), minority class"
        if positive is not None
        else ("precision-recall (test), one-vs-rest: rarest classes and lowest AP")
    )
    axes.set_title(title)
    return figure


def reliability_bins(probabilities: np.ndarray, labels: np.ndarray, bins: int = 15) -> dict[str, np.ndarray]:
    """Top-label confidence bins: mean confidence, accuracy and count per bin, and the ECE."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    confidence = probabilities.max(axis=1)
    correct = (probabilities.argmax(axis=1) == np.asarray(labels)).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    count = np.bincount(which, minlength=bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(which, confidence, minlength=bins) / count
        accuracy = np.bincount(which, correct, minlength=bins) / count
    gaps = np.nan_to_num(np.abs(mean_conf - accuracy)) * count
    return {
        "confidence": mean_conf,
        "accuracy": accuracy,
        "count": count,
        "ece": float(gaps.sum() / max(count.sum(), 1.0)),
    }


def reliability_figure(
    raw_probabilities: np.ndarray, probabilities: np.ndarray | None, labels: np.ndarray, bins: int = 15
) -> Figure:
    """Reliability diagram (top-label, `bins` bins) of the raw softmax and the calibrated
    probabilities on the test split; the lower panel shows how many samples fall in each bin."""
    figure = _figure(6.0, 6.0)
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    top.plot([0, 1], [0, 1], color="0.6", linestyle=":", label="perfectly calibrated")
    series = [("raw softmax", raw_probabilities, "tab:orange")]
    if probabilities is not None:
        series.append(("calibrated", probabilities, "tab:blue"))
    width = 1.0 / bins
    for offset, (name, values, color) in enumerate(series):
        stats = reliability_bins(values, labels, bins)
        seen = stats["count"] > 0
        top.plot(
            stats["confidence"][seen],
            stats["accuracy"][seen],
            "o-",
            color=color,
            label=f"{name} (ECE {stats['ece']:.4f})",
        )
        centres = np.linspace(width / 2, 1 - width / 2, bins) + (offset - 0.5) * width * 0.4
        bottom.bar(centres, stats["count"], width=width * 0.4, color=color)
    top.set_xlim(0.0, 1.0)
    top.set_ylim(0.0, 1.05)
    top.set_ylabel("accuracy in the bin")
    top.grid(alpha=0.3)
    top.legend(loc="upper left", fontsize=8)
    top.set_title("reliability (test, top-label confidence)")
    bottom.set_yscale("log")
    bottom.set_ylabel("samples")
    bottom.set_xlabel("confidence (probability of the top class)")
    return figure


def save_figure(figure: Figure, path: str | Path) -> Path:
    """Atomically: a killed run leaves the previous PNG or none, never a cut-off one."""
    return write_with(path, lambda handle: figure.savefig(handle, format="png"), binary=True)
