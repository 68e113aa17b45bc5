"""`DatasetDataModule` end to end: a fork's per-sample Dataset (one .npy image file per sample, not in
memory, not a float matrix) trains through train.py with class weights counted from its `targets` array,
with only files under tests/ (its datamodule and YAML, plus the CNN of tests/fork_example) reached
through Hydra's search path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from inprocess import run_app

from conftest import read_json

TESTS = Path(__file__).resolve().parents[1]
SEARCHPATH = (
    f"hydra.searchpath=[file://{TESTS / 'dataset_example' / 'configs'},"
    f"file://{TESTS / 'fork_example' / 'configs'}]"
)


@pytest.mark.slow
def test_a_per_sample_file_dataset_trains_through_train_py(tmp_path, monkeypatch):
    from dataset_example import digit_files

    reads = []
    original = digit_files.ImageFiles.__getitem__
    monkeypatch.setattr(
        digit_files.ImageFiles, "__getitem__", lambda self, i: reads.append(i) or original(self, i)
    )
    code = run_app(
        "train.py",
        SEARCHPATH,
        "data=digit_files",
        f"data.root={tmp_path / 'files'}",
        "model=tiny_cnn",
        "class_weights=balanced",
        "optimizer.lr=0.01",
        "trainer.max_epochs=10",
        "data.batch_size=32",
        "callbacks.progress_bar.refresh_rate=0",
        run_dir=tmp_path / "run",
        monkeypatch=monkeypatch,
    )
    assert code == 0
    weights = read_json(tmp_path / "run" / "class_weights.json")
    counts = np.asarray(weights["counts"])
    assert counts[0] >= 9 * counts[-1]  # long-tailed (imbalance_ratio=10), counted from `targets`
    np.testing.assert_allclose(weights["weights"], counts.sum() / (len(counts) * counts), rtol=1e-6)
    metrics = read_json(tmp_path / "run" / "metrics.json")
    assert metrics["test/balanced_accuracy"] > 0.3  # learns (chance: 0.1)
    assert len(list((tmp_path / "files" / "train").glob("*.npy"))) == int(counts.sum())
    assert reads  # the samples were read from their files, one by one

    # eval.py rebuilds the datamodule from the checkpoint alone and gets the same test metrics
    best = tmp_path / "run" / "checkpoints" / "last.ckpt"  # the checkpoint training tested
    # the fork's input transform lives outside the imbalanced package: eval.py builds it only when trusted
    assert (
        run_app(
            "eval.py",
            SEARCHPATH,
            f"ckpt_path={best}",
            "trusted_targets=[fork_example.]",
            run_dir=tmp_path / "eval",
            monkeypatch=monkeypatch,
        )
        == 0
    )
    evaluated = read_json(tmp_path / "eval" / "metrics.json")
    assert evaluated["test/num_samples"] == 300  # 10 classes x test_per_class 30
    for key in ("test/accuracy", "test/balanced_accuracy", "test/macro_f1"):
        assert evaluated[key] == pytest.approx(metrics[key], abs=1e-6)
