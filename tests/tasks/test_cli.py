"""The command line end to end: `python train.py ...` as a user runs it, through its Hydra entry point
in the test process (tests/inprocess.py)."""

import csv
import re

import numpy as np
import pytest
import torch
from inprocess import run_app
from sklearn.metrics import balanced_accuracy_score
from sklearn.utils.class_weight import compute_class_weight

from conftest import FAST, read_json
from imbalanced.classifier import ImbalancedClassifier
from imbalanced.data.tables.synthetic import SyntheticDataModule
from imbalanced.errors import UserError
from imbalanced.runs.config_checks import check_config


@pytest.fixture(scope="module")
def balanced_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("balanced")
    code = run_app(
        "train.py",
        "data=synthetic",
        "class_weights=balanced",
        *FAST,
        run_dir=run_dir,
    )
    assert code == 0
    return run_dir


def test_run_writes_the_contracted_files(balanced_run):
    metrics = read_json(balanced_run / "metrics.json")
    for stage in ("val", "test"):
        for name in ("accuracy", "balanced_accuracy", "macro_f1"):
            assert 0.0 <= metrics[f"{stage}/{name}"] <= 1.0
        assert len(metrics[f"{stage}/per_class_recall"]) == 5
    assert metrics["class_names"] == [f"class_{i}" for i in range(5)]
    assert (balanced_run / "checkpoints" / "last.ckpt").is_file()
    assert len(list((balanced_run / "checkpoints").glob("best-*.ckpt"))) == 1


def test_balanced_weights_equal_scikit_learn_on_the_training_labels(balanced_run):
    report = read_json(balanced_run / "class_weights.json")
    datamodule = SyntheticDataModule(n_samples=3000, seed=0)  # same config as the run
    datamodule.setup("fit")
    y_train = datamodule.splits.y_train
    expected = compute_class_weight("balanced", classes=np.arange(5), y=y_train)
    assert report["strategy"] == "balanced"
    assert report["counts"] == np.bincount(y_train).tolist()
    np.testing.assert_allclose(report["weights"], expected, rtol=1e-12)


def test_tested_checkpoint_loads_alone_and_reproduces_test_metrics(balanced_run):
    # the one training tests: a table refits on training + validation (refit_with_validation=auto)
    tested = balanced_run / "checkpoints" / "refit.ckpt"
    model = ImbalancedClassifier.load_from_checkpoint(tested, map_location="cpu").eval()
    report = read_json(balanced_run / "class_weights.json")["refit_with_validation"]
    np.testing.assert_allclose(model.class_weights.numpy(), report["weights"], rtol=1e-6)
    np.testing.assert_array_equal(model.class_counts.numpy(), report["counts"])

    datamodule = SyntheticDataModule(n_samples=3000, seed=0)
    datamodule.setup("test")
    with torch.no_grad():
        predicted = model(torch.as_tensor(datamodule.splits.x_test)).argmax(1).numpy()
    metrics = read_json(balanced_run / "metrics.json")
    y_test = datamodule.splits.y_test
    assert metrics["test/accuracy"] == pytest.approx((predicted == y_test).mean(), abs=1e-6)
    assert metrics["test/balanced_accuracy"] == pytest.approx(
        balanced_accuracy_score(y_test, predicted), abs=1e-6
    )


@pytest.mark.slow
def test_effective_number_with_reduction_none_logs_per_class_loss(tmp_path, monkeypatch):
    code = run_app(
        "train.py",
        "class_weights=effective_number",
        "class_weights.beta=0.999",
        "loss.reduction=none",
        *FAST,
        "refit_with_validation=false",  # the first training's weights and losses are under test
        run_dir=tmp_path,
        monkeypatch=monkeypatch,
    )
    assert code == 0
    report = read_json(tmp_path / "class_weights.json")
    counts = np.array(report["counts"], dtype=float)
    raw = (1 - 0.999) / (1 - 0.999**counts)
    np.testing.assert_allclose(report["weights"], raw / raw.sum() * 5, rtol=1e-9)
    with open(tmp_path / "csv" / "metrics.csv") as handle:
        header = next(csv.reader(handle))
    assert {f"train/class_loss/{i}" for i in range(5)} <= set(header)
    assert "test/balanced_accuracy" in read_json(tmp_path / "metrics.json")


@pytest.mark.slow
def test_manual_weights_with_sum_reduction(tmp_path, monkeypatch):
    code = run_app(
        "train.py",
        "class_weights=manual",
        "class_weights.weights=[1,2,3,4,5.5]",
        "loss.reduction=sum",
        *FAST,
        "refit_with_validation=false",  # the weights are under test, not the refit
        run_dir=tmp_path,
        monkeypatch=monkeypatch,
    )
    assert code == 0
    assert read_json(tmp_path / "class_weights.json")["weights"] == [1, 2, 3, 4, 5.5]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["+class_weights.strategy=inverse_square"],
            "class_weights.strategy='inverse_square' is not a setting of imbalanced.longtail.weights.auto",
        ),
        (["class_weights=effective_number", "class_weights.beta=1.5"], r"beta=1.5 is outside \[0, 1\)"),
        (["class_weights=manual", "class_weights.weights=[1,-1,1,1,1]"], "negative or non-finite"),
        (["class_weights=manual", "class_weights.weights=[1,inf,1,1,1]"], "negative or non-finite"),
        (["loss.reduction=avg"], "loss.reduction='avg' is invalid; allowed: one of 'mean', 'sum', 'none'"),
        (["loss.normalize=rows"], "loss.normalize='rows' is invalid; allowed: one of 'weight_sum'"),
    ],
)
def test_bad_settings_are_rejected_before_any_data(compose_cfg, overrides, message):
    with pytest.raises(UserError, match=message):
        check_config(compose_cfg(*overrides))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["class_weights=manual", "class_weights.weights=[1,2]"],
            "class_weights.weights has 2 values but the data has 5 classes",
        ),
    ],
)
def test_cli_reports_bad_settings_in_one_line_and_does_not_train(
    tmp_path, overrides, message, monkeypatch, capsys
):
    code = run_app("train.py", *overrides, *FAST, run_dir=tmp_path, monkeypatch=monkeypatch)
    err = capsys.readouterr().err
    assert code == 2
    assert re.search(message, err), err[-2000:]
    assert not (tmp_path / "checkpoints").exists()
