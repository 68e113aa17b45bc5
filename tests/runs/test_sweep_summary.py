"""Hydra multirun summary: summary.csv, summary.md, comparison.png in the sweep directory."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from inprocess import run_app
from png_checks import assert_png

from imbalanced.runs.sweep_summary import FAILURE_FILE, write_summary


def fake_job(sweep: Path, job: str, overrides: list[str], metrics: dict | None, error: str = "") -> None:
    job_dir = sweep / job
    (job_dir / ".hydra").mkdir(parents=True)
    (job_dir / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    if metrics is not None:
        (job_dir / "metrics.json").write_text(json.dumps(metrics))
    if error:
        (job_dir / FAILURE_FILE).write_text(error)


def metrics(balanced: float, recall: list[float]) -> dict:
    return {
        "test/balanced_accuracy": balanced,
        "test/macro_f1": balanced - 0.1,
        "test/accuracy": 0.9,
        "test/per_class_recall": recall,
        "val/balanced_accuracy": balanced - 0.05,
    }


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def test_summary_sorts_best_first_marks_failed_jobs_and_shows_varying_overrides(tmp_path):
    fake_job(tmp_path, "0", ["class_weights=none", "seed=1"], metrics(0.40, [0.9, 0.1]))
    fake_job(tmp_path, "1", ["class_weights=balanced", "seed=1"], metrics(0.80, [0.85, 0.75]))
    fake_job(tmp_path, "2", ["class_weights=manual", "seed=1"], None, "UserError: needs weights")
    fake_job(tmp_path, "10", ["class_weights=inverse", "seed=1"], metrics(0.60, [0.7, 0.5]))

    write_summary(tmp_path)
    rows = read_csv(tmp_path / "summary.csv")
    assert [row["job"] for row in rows] == ["1", "10", "0", "2"]
    assert [row["status"] for row in rows] == ["ok", "ok", "ok", "failed"]
    assert rows[0]["class_weights"] == "balanced" and "seed" not in rows[0]  # seed does not vary
    assert rows[0]["overrides"] == "class_weights=balanced seed=1"
    assert float(rows[0]["test/balanced_accuracy"]) == pytest.approx(0.8)
    assert float(rows[2]["test/worst_class_recall"]) == pytest.approx(0.1)
    assert rows[3]["error"] == "UserError: needs weights" and rows[3]["test/balanced_accuracy"] == ""

    markdown = (tmp_path / "summary.md").read_text()
    assert "4 jobs, 1 failed" in markdown
    table = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert table[1].startswith("| 1 | 1 | balanced | ok | 0.7500 | 0.8000")  # val first, test beside
    assert "best first by val/balanced_accuracy" in markdown
    assert_png(tmp_path / "comparison.png")


def test_summary_ranks_by_the_validation_metric_never_by_a_test_metric(tmp_path, caplog):
    fake_job(tmp_path, "0", ["seed=1"], {**metrics(0.90, [0.9]), "val/balanced_accuracy": 0.50})
    fake_job(tmp_path, "1", ["seed=2"], {**metrics(0.60, [0.6]), "val/balanced_accuracy": 0.70})
    fake_job(
        tmp_path,
        "2",
        ["seed=3"],
        {**metrics(0.70, [0.7]), "val/macro_f1": 0.9, "val/balanced_accuracy": 0.60},
    )
    rows = write_summary(tmp_path, plot=False)
    assert [row["job"] for row in rows] == ["1", "2", "0"]  # by val, although job 0 tests best
    header = read_csv(tmp_path / "summary.csv")[0]
    assert list(header)[4:6] == ["val/balanced_accuracy", "test/balanced_accuracy"]  # rank job seed status
    assert [r["job"] for r in write_summary(tmp_path, sort_by="val/macro_f1", plot=False)][0] == "2"
    with caplog.at_level("WARNING"):
        rows = write_summary(tmp_path, sort_by="test/balanced_accuracy", plot=False)
    assert [row["job"] for row in rows] == ["1", "2", "0"]
    assert "does not rank by test/balanced_accuracy" in caplog.text


def test_the_sweep_ranks_by_the_optimized_metric(compose_cfg):
    from hydra.utils import instantiate

    callback = instantiate(compose_cfg("optimized_metric=val/macro_f1").hydra.callbacks.sweep_summary)
    assert callback.sort_by == "val/macro_f1"
    assert instantiate(compose_cfg().hydra.callbacks.sweep_summary).sort_by == "val/balanced_accuracy"


def test_summary_of_a_job_that_died_without_a_hydra_report_says_failed(tmp_path):
    fake_job(tmp_path, "0", ["a=1"], None)
    rows = write_summary(tmp_path, plot=False)
    assert rows[0]["status"] == "failed" and rows[0]["error"] == "no metrics.json"
    assert not (tmp_path / "comparison.png").exists()


@pytest.mark.slow
def test_two_by_two_multirun_writes_a_summary_with_four_rows(tmp_path, monkeypatch):
    sweep = tmp_path / "sweep"
    code = run_app(
        "train.py",
        "-m",
        "class_weights=none,balanced",
        "loss.reduction=mean,sum",
        "data.n_samples=1200",
        "trainer.max_epochs=1",
        "refit_with_validation=false",  # the summary is under test, not the refit
        "callbacks.progress_bar.refresh_rate=0",
        f"hydra.sweep.dir={sweep}",
        run_dir=tmp_path / "run",  # a multirun writes to hydra.sweep.dir
        monkeypatch=monkeypatch,
    )
    assert code == 0
    rows = read_csv(sweep / "summary.csv")
    assert len(rows) == 4 and all(row["status"] == "ok" for row in rows)
    assert {(r["class_weights"], r["loss.reduction"]) for r in rows} == {
        (w, r) for w in ("none", "balanced") for r in ("mean", "sum")
    }
    for column in ("test/balanced_accuracy", "test/macro_f1", "test/accuracy", "test/worst_class_recall"):
        assert all(0.0 <= float(row[column]) <= 1.0 for row in rows), column
    values = [float(row["val/balanced_accuracy"]) for row in rows]
    assert values == sorted(values, reverse=True)  # ranked by the validation metric
    for row in rows:  # each row is that job's metrics.json
        job_metrics = json.loads((sweep / row["job"] / "metrics.json").read_text())
        assert float(row["test/balanced_accuracy"]) == pytest.approx(
            job_metrics["test/balanced_accuracy"], abs=1e-4
        )
    assert "| rank | job | class_weights | loss.reduction | status |" in (sweep / "summary.md").read_text()
    assert_png(sweep / "comparison.png")
