"""Run plots, the per-class table and the test confusion-matrix callback (fast, in-process)."""

from __future__ import annotations

import numpy as np
import pytest
from png_checks import assert_png

from imbalanced.reporting import end_of_run as run_report
from imbalanced.reporting import plots

NAMES = ["cat", "dog", "owl", "eel"]
COUNTS = [800, 200, 50, 10]
WEIGHTS = [0.33, 1.33, 5.3, 26.5]
RECALL = [0.95, 0.7, 0.4, None]
F1 = [0.9, 0.6, 0.35, 0.0]
CONFUSION = np.array([[190, 5, 3, 2], [10, 35, 5, 0], [4, 2, 6, 3], [0, 2, 0, 0]])


def test_frequency_order_sorts_most_frequent_first_and_keeps_ties_stable():
    assert plots.frequency_order([5, 50, 5, 500]).tolist() == [3, 1, 0, 2]


def test_row_normalize_divides_by_true_class_and_keeps_empty_rows_zero():
    normalized = plots.row_normalize(np.array([[3, 1], [0, 0]]))
    assert normalized.tolist() == [[0.75, 0.25], [0.0, 0.0]]


def test_write_plots_writes_three_pngs_with_expected_dimensions(tmp_path):
    figures = run_report.write_plots(tmp_path, NAMES, COUNTS, WEIGHTS, RECALL, F1, CONFUSION, "balanced")
    assert sorted(figures) == sorted(run_report.PLOT_FILES)
    for name, figure in figures.items():
        width, height = figure.get_size_inches() * figure.dpi
        assert assert_png(tmp_path / name) == (round(height), round(width))
    # the confusion matrix shows row-normalized values; bars follow the frequency order
    axes = figures["confusion_matrix.png"].axes[0]
    assert np.allclose(axes.images[0].get_array(), plots.row_normalize(CONFUSION))
    assert [t.get_text() for t in axes.get_yticklabels()][0] == "cat (n=200)"
    distribution = figures["class_distribution.png"].axes
    assert [round(p.get_height(), 2) for p in distribution[1].patches] == WEIGHTS
    labels = [t.get_text() for t in distribution[1].get_xticklabels()]
    assert labels[0].startswith("cat") and labels[-1].startswith("eel")


def test_recall_plot_follows_frequency_order(tmp_path):
    order = [2, 0, 3, 1]  # counts below make owl the most frequent
    figure = plots.recall_vs_count_figure(NAMES, [50, 10, 800, 20], RECALL, F1)
    recall_line = figure.axes[0].lines[0]
    expected = [np.nan if RECALL[i] is None else RECALL[i] for i in order]
    assert np.allclose(recall_line.get_ydata(), expected, equal_nan=True)


def test_format_table_lists_classes_by_training_count_with_weight_recall_f1():
    rows = run_report.per_class_rows(NAMES, [10, 800, 200, 50], WEIGHTS, RECALL, F1)
    text = run_report.format_table(rows, {"test/balanced_accuracy": 0.6123, "test/macro_f1": 0.5})
    lines = text.splitlines()
    assert lines[1].split() == ["class", "train", "n", "weight", "recall", "F1"]
    assert [line.split()[0] for line in lines[3:7]] == ["dog", "owl", "eel", "cat"]
    assert lines[3].split() == ["dog", "800", "1.33", "0.700", "0.600"]
    assert lines[6].split() == ["cat", "10", "0.33", "0.950", "0.900"]
    assert "balanced accuracy 0.612" in text and "macro-F1 0.500" in text


@pytest.mark.parametrize("none_recall", [True, False])
def test_format_table_shows_a_dash_for_missing_values(none_recall):
    rows = run_report.per_class_rows(["a"], [3], [1.0], [None if none_recall else 0.5], None)
    assert run_report.format_table(rows).splitlines()[3].split() == (
        ["a", "3", "1", "-", "-"] if none_recall else ["a", "3", "1", "0.500", "-"]
    )


def test_test_class_stats_matches_sklearn_on_the_test_split(tmp_path, compose_cfg):
    """The callback's confusion matrix and per-class F1 equal scikit-learn's on the same predictions."""
    import lightning as L
    import torch
    from sklearn.metrics import confusion_matrix, f1_score

    from imbalanced.callbacks.per_class_report import PerClassTestStats
    from imbalanced.from_config import build_datamodule, build_model

    cfg = compose_cfg("data.n_samples=1500", f"hydra.run.dir={tmp_path}")
    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")
    model = build_model(cfg, datamodule)
    model.load_data_contract(datamodule.contract())
    stats = PerClassTestStats()
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        callbacks=[stats],
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
    )
    logged = trainer.test(model, datamodule=datamodule, verbose=False)[0]

    splits = datamodule.splits
    with torch.no_grad():  # eval mode, as in the test loop (no dropout)
        predicted = model.eval()(torch.as_tensor(splits.x_test)).argmax(-1).numpy()
    labels = list(range(datamodule.num_classes))
    expected = confusion_matrix(splits.y_test, predicted, labels=labels)
    assert stats.confusion.tolist() == expected.tolist()
    expected_f1 = f1_score(splits.y_test, predicted, labels=labels, average=None, zero_division=0)
    assert np.allclose(stats.per_class_f1, expected_f1, atol=1e-6)
    assert np.allclose([logged[f"test/f1/{i}"] for i in labels], expected_f1, atol=1e-6)


# ---- readable from 2 to 100 classes ------------------------------------------------------------
def _drawn_inside(figure, margin_px: float = 6.0) -> bool:
    """Whether everything drawn (titles, tick labels, legend) keeps `margin_px` from every edge."""
    figure.canvas.draw()
    box = figure.get_tightbbox(figure.canvas.get_renderer()).transformed(figure.dpi_scale_trans)
    width, height = figure.bbox.width, figure.bbox.height
    return min(box.x0, box.y0, width - box.x1, height - box.y1) >= margin_px


@pytest.mark.parametrize("size", [2, 10, 100])
def test_confusion_matrix_keeps_every_label_inside_the_figure(size):
    names = [f"class_{i}" for i in range(size)]
    confusion = np.full((size, size), 3) + np.diag(np.full(size, 500))
    figure = plots.confusion_matrix_figure(confusion, names)
    assert _drawn_inside(figure)
    axes = figure.axes[0]
    labels = [t.get_text() for t in axes.get_yticklabels()]
    assert len(labels) <= 50 and labels[0] == "class_0 (n=" + str(500 + 3 * size) + ")"


def test_multiclass_pr_curve_shows_at_most_eight_named_classes_rarest_and_weakest():
    rng = np.random.default_rng(0)
    size, rows = 100, 6000
    counts = np.arange(size, 0, -1) * 10  # class 99 is the rarest
    labels = rng.integers(0, size, rows)
    logits = rng.normal(size=(rows, size))
    strength = np.full(size, 6.0)
    strength[[3, 40, 41]] = 0.0  # three frequent classes the model cannot tell apart
    logits[np.arange(rows), labels] += strength[labels]
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    shown = plots.pr_curve_classes(probabilities, labels, counts)
    assert shown[:5] == [99, 98, 97, 96, 95] and sorted(shown[5:]) == [3, 40, 41]
    figure = plots.pr_curve_figure(probabilities, labels, [f"c{i}" for i in range(size)], counts)
    legend = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert [text.split(" (AP")[0] for text in legend] == [f"c{i}" for i in shown]
    assert _drawn_inside(figure)
