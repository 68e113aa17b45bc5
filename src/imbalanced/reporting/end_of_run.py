"""End of a run: the per-class table in the terminal, the PNG plots, and the plots in the loggers."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from lightning.pytorch.utilities import rank_zero_only

from imbalanced.callbacks.per_class_report import PerClassTestStats
from imbalanced.reporting import plots
from imbalanced.runs.console import show
from imbalanced.runs.csv_cells import write_csv

log = logging.getLogger(__name__)

PLOT_FILES = ("confusion_matrix.png", "recall_vs_count.png", "class_distribution.png")
RARE_EVENT_PLOT_FILES = ("pr_curve.png", "reliability.png")


def _cell(value: float | None, digits: int = 3) -> str:
    return "-" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def per_class_rows(
    class_names: Sequence[str],
    counts: Sequence[float],
    weights: Sequence[float],
    recall: Sequence[float | None],
    f1: Sequence[float | None] | None,
) -> list[dict[str, Any]]:
    """One row per class, from the most to the least frequent class in training."""
    return [
        {
            "class": str(class_names[i]),
            "train_count": int(counts[i]),
            "weight": float(weights[i]),
            "recall": recall[i],
            "f1": None if f1 is None else f1[i],
        }
        for i in plots.frequency_order(counts)
    ]


def format_table(rows: Sequence[Mapping[str, Any]], report: Mapping[str, Any] | None = None) -> str:
    """A plain-text table that reads well in a terminal (and in train.log)."""
    name_width = max([5, *(len(row["class"]) for row in rows)])
    header = f"{'class':<{name_width}}  {'train n':>8}  {'weight':>8}  {'recall':>6}  {'F1':>6}"
    lines = ["per-class test results (most to least frequent in training)", header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row['class']:<{name_width}}  {row['train_count']:>8d}  {row['weight']:>8.4g}  "
            f"{_cell(row['recall']):>6}  {_cell(row['f1']):>6}"
        )
    if report:
        summary = [
            f"{label} {_cell(report.get(f'test/{key}'))}"
            for label, key in (
                ("balanced accuracy", "balanced_accuracy"),
                ("macro-F1", "macro_f1"),
                ("accuracy", "accuracy"),
            )
        ]
        lines.append("-" * len(header))
        lines.append("test: " + "   ".join(summary))
        if report.get("test/average_precision") is not None:
            lines += ["test: " + line for line in rare_event_summary(report)]
    return "\n".join(lines)


def rare_event_summary(report: Mapping[str, Any]) -> list[str]:
    """AP, ROC-AUC, ECE raw -> calibrated, and for two classes the threshold and its precision/recall."""
    parts = [
        f"average precision {_cell(report.get('test/average_precision'))}",
        f"ROC-AUC {_cell(report.get('test/roc_auc'))}",
        f"ECE {_cell(report.get('test/ece_raw'), 4)} raw -> {_cell(report.get('test/ece'), 4)} "
        f"({report.get('calibration', 'none')})",
    ]
    lines = ["   ".join(parts)]
    if report.get("decision_threshold") is not None:
        lines.append(
            f"{report.get('positive_class')} at threshold {report['decision_threshold']:.3g} "
            f"({report.get('decision_rule')}): precision {_cell(report.get('test/precision'))}   "
            f"recall {_cell(report.get('test/recall'))}   F1 {_cell(report.get('test/f1'))}"
        )
    return lines


def write_plots(
    output_dir: Path,
    class_names: Sequence[str],
    counts: Sequence[float],
    weights: Sequence[float],
    recall: Sequence[float | None],
    f1: Sequence[float | None] | None,
    confusion: np.ndarray | None,
    strategy: str = "",
) -> dict[str, Any]:
    """Write the PNGs into `output_dir`; returns {file name: Figure} of what was written."""
    figures = {
        "recall_vs_count.png": plots.recall_vs_count_figure(class_names, counts, recall, f1),
        "class_distribution.png": plots.class_distribution_figure(class_names, counts, weights, strategy),
    }
    if confusion is not None:
        figures["confusion_matrix.png"] = plots.confusion_matrix_figure(confusion, class_names)
    for name, figure in figures.items():
        plots.save_figure(figure, output_dir / name)
    return figures


def write_rare_event_plots(
    output_dir: Path,
    test_outputs: Mapping[str, np.ndarray],
    class_names: Sequence[str],
    counts: Sequence[float],
    report: Mapping[str, Any],
) -> dict[str, Any]:
    """`pr_curve.png` and `reliability.png` from the test probabilities of all ranks."""
    positive_name = report.get("positive_class")
    positive = list(class_names).index(positive_name) if positive_name in class_names else None
    calibrated = report.get("calibration", "none") != "none"
    labels = test_outputs["labels"]
    figures = {
        "pr_curve.png": plots.pr_curve_figure(
            test_outputs["probabilities"],
            labels,
            class_names,
            counts,
            positive,
            report.get("decision_threshold"),
        ),
        "reliability.png": plots.reliability_figure(
            test_outputs["raw_probabilities"], test_outputs["probabilities"] if calibrated else None, labels
        ),
    }
    for name, figure in figures.items():
        plots.save_figure(figure, output_dir / name)
    return figures


def write_confusion_csv(path: Path, confusion: np.ndarray, class_names: Sequence[str]) -> Path:
    """Test confusion matrix as counts: one row per true class, one column per predicted class.

    Written atomically with the csv module (labels with commas or quotes stay one cell) and
    spreadsheet-formula escaping of the labels (runs/csv_cells.py)."""
    rows = [[str(name), *(int(v) for v in row)] for name, row in zip(class_names, confusion, strict=True)]
    return write_csv(path, ["true\\predicted", *map(str, class_names)], rows)


def _log_figures(trainer: Any, figures: Mapping[str, Any], output_dir: Path) -> None:
    """TensorBoard gets the figures as images, MLflow as artifacts; other loggers are skipped."""
    for logger in getattr(trainer, "loggers", []) or []:
        kind = type(logger).__name__
        try:
            if kind == "TensorBoardLogger":
                for name, figure in figures.items():
                    logger.experiment.add_figure(f"plots/{Path(name).stem}", figure, trainer.global_step)
                logger.experiment.flush()
            elif kind == "MLFlowLogger":
                for name in figures:
                    logger.experiment.log_artifact(logger.run_id, str(output_dir / name), "plots")
        except Exception as error:  # a logger problem must not lose the run's results
            log.warning("could not log plots to %s: %s", kind, error)


def _stats_callback(trainer: Any) -> PerClassTestStats | None:
    for callback in getattr(trainer, "callbacks", []) or []:
        if isinstance(callback, PerClassTestStats):
            return callback
    return None


@rank_zero_only
def show_results(model: Any, report: Mapping[str, Any]) -> None:
    """The per-class table and the `test:` summary, on the terminal and in the run's log file
    (train.py and eval.py alike); counts and weights from the model's buffers."""
    class_names = list(report["class_names"])
    counts = model.class_counts.detach().cpu().numpy()
    weights = model.class_weights.detach().cpu().numpy()
    recall = report.get("test/per_class_recall") or [None] * len(class_names)
    rows = per_class_rows(class_names, counts, weights, recall, report.get("test/per_class_f1"))
    show(format_table(rows, report))


@rank_zero_only
def finish_run(
    trainer: Any, model: Any, report: Mapping[str, Any], output_dir: str | Path, strategy: str = ""
) -> None:
    """Print the per-class table, write the plots and log them (rank zero only).

    Counts and weights come from the model's buffers (the training split's, saved in checkpoints),
    recall and F1 from metrics.json's content, the confusion matrix from `PerClassTestStats`.
    """
    output_dir = Path(output_dir)
    class_names = list(report["class_names"])
    counts = model.class_counts.detach().cpu().numpy()
    weights = model.class_weights.detach().cpu().numpy()
    recall = report.get("test/per_class_recall") or [None] * len(class_names)
    f1 = report.get("test/per_class_f1")
    stats = _stats_callback(trainer)
    confusion = stats.confusion if stats is not None else None

    show_results(model, report)
    figures = write_plots(output_dir, class_names, counts, weights, recall, f1, confusion, strategy)
    test_outputs = getattr(model, "test_outputs", None)
    if test_outputs is not None:
        figures.update(write_rare_event_plots(output_dir, test_outputs, class_names, counts, report))
    if confusion is not None:
        write_confusion_csv(output_dir / "confusion_matrix.csv", confusion, class_names)
    log.info("wrote plots %s to %s", ", ".join(sorted(figures)), output_dir)
    if confusion is None:
        log.warning("no confusion matrix: callbacks.test_class_stats (PerClassTestStats) is not configured")
    _log_figures(trainer, figures, output_dir)
