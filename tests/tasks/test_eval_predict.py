"""The tabular workflow end to end through the command line: train.py, eval.py, predict.py.

One training run (module fixture) on a CSV with string labels and a fixed test file is shared by
the eval and predict tests. The apps run in-process through their Hydra entry points
(tests/inprocess.py), saving the seconds each new interpreter spends importing torch and Lightning.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from inprocess import run_app
from tabular_tables import CLASSES, make_table

from conftest import read_json, record_checkpoint_reads

QUIET = ["callbacks.progress_bar.refresh_rate=0"]  # train.py
QUIET_APP = ["+trainer.enable_progress_bar=false"]  # eval.py / predict.py (no callbacks group)
SCALARS = ("test/accuracy", "test/balanced_accuracy", "test/macro_f1")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """train.py data=tabular on train.csv (string labels, a text column) with data.test_path=test.csv."""
    root = tmp_path_factory.mktemp("tabular")
    train, test = make_table(300, seed=0), make_table(80, seed=5)
    train.to_csv(root / "train.csv", index=False)
    test.to_csv(root / "test.csv", index=False)
    run_dir = root / "run"
    code = run_app(
        "train.py",
        "data=tabular",
        f"data.path={root / 'train.csv'}",
        "data.target=label",
        f"data.test_path={root / 'test.csv'}",
        "trainer.max_epochs=2",
        *QUIET,
        run_dir=run_dir,
    )
    assert code == 0
    best = sorted((run_dir / "checkpoints").glob("best-*.ckpt"))
    assert len(best) == 1
    # the checkpoint the run tested (a table refits on train + validation): eval/predict must reproduce
    # its metrics
    tested = read_json(run_dir / "metrics.json")["tested_checkpoint"]
    assert tested == "checkpoints/refit.ckpt"
    return {"root": root, "run": run_dir, "ckpt": run_dir / tested, "test": test, "train": train}


def test_train_keeps_string_class_names(trained):
    metrics = read_json(trained["run"] / "metrics.json")
    weights = read_json(trained["run"] / "class_weights.json")
    assert metrics["class_names"] == weights["class_names"] == list(CLASSES)
    # with a fixed test file only the validation split is cut from train.csv
    assert sum(weights["counts"]) == 300 - round(0.15 * 300)


def _check_reproduces(trained, run_dir):
    training = read_json(trained["run"] / "metrics.json")
    evaluated = read_json(run_dir / "metrics.json")
    assert evaluated["class_names"] == list(CLASSES)
    assert evaluated["test/num_samples"] == len(trained["test"])  # the test file, not a split
    for key in SCALARS:
        assert evaluated[key] == pytest.approx(training[key], abs=1e-6), key
    recall = training["test/per_class_recall"]
    assert evaluated["test/per_class_recall"] == pytest.approx(recall, abs=1e-6)


def test_eval_reproduces_training_test_metrics_from_the_saved_data_config(trained, monkeypatch):
    run_dir = trained["root"] / "eval_saved"
    reads = record_checkpoint_reads(monkeypatch)
    code = run_app(
        "eval.py", f"ckpt_path={trained['ckpt']}", *QUIET_APP, run_dir=run_dir, monkeypatch=monkeypatch
    )
    assert code == 0
    # one read of a possibly large file gives the model and the training data's fingerprint
    assert reads == [True]
    _check_reproduces(trained, run_dir)


def test_eval_on_a_test_file_given_on_the_command_line(trained, monkeypatch):
    run_dir = trained["root"] / "eval_file"
    test_file = f"data.test_path={trained['root'] / 'test.csv'}"
    code = run_app(
        "eval.py",
        f"ckpt_path={trained['ckpt']}",
        test_file,
        *QUIET_APP,
        run_dir=run_dir,
        monkeypatch=monkeypatch,
    )
    assert code == 0
    _check_reproduces(trained, run_dir)


def test_predict_writes_one_row_per_input_row(trained, monkeypatch):
    # the label column is ignored, column order does not matter, an unseen category encodes as zeros
    test = trained["test"]
    table = test[["label", "flag", "color", "noise", "signal"]]
    table = pd.concat([table, table.iloc[[0]].assign(color="purple")], ignore_index=True)
    table.to_csv(trained["root"] / "predict.csv", index=False)
    output = trained["root"] / "out" / "predictions.csv"
    code = run_app(
        "predict.py",
        f"ckpt_path={trained['ckpt']}",
        f"data.path={trained['root'] / 'predict.csv'}",
        f"output_path={output}",
        *QUIET_APP,
        run_dir=trained["root"] / "predict_run",
        monkeypatch=monkeypatch,
    )
    assert code == 0
    predictions = pd.read_csv(output)
    columns = [f"prob_{name}" for name in CLASSES]
    assert list(predictions.columns) == ["prediction", *columns]
    assert len(predictions) == len(table)
    probabilities = predictions[columns].to_numpy()
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    # calibrated probabilities need not peak at the decision, the raw softmax does; the
    # calibration never changes the decisions
    raw_output = trained["root"] / "out" / "raw.csv"
    code = run_app(
        "predict.py",
        f"ckpt_path={trained['ckpt']}",
        f"data.path={trained['root'] / 'predict.csv'}",
        f"output_path={raw_output}",
        "calibration=none",
        *QUIET_APP,
        run_dir=trained["root"] / "predict_raw",
        monkeypatch=monkeypatch,
    )
    assert code == 0
    raw = pd.read_csv(raw_output)
    assert (raw["prediction"] == predictions["prediction"]).all()
    assert (raw["prediction"] == np.array(CLASSES)[raw[columns].to_numpy().argmax(axis=1)]).all()
    # on the test rows the predictions give the training run's test accuracy
    training = read_json(trained["run"] / "metrics.json")
    correct = (predictions["prediction"][: len(test)] == test["label"]).sum()
    assert correct == round(training["test/accuracy"] * len(test))


def test_predict_rejects_a_file_whose_columns_do_not_match(trained, monkeypatch, capsys):
    bad = trained["test"].drop(columns=["noise"]).assign(extra=1.0)
    bad.to_csv(trained["root"] / "bad.csv", index=False)
    code = run_app(
        "predict.py",
        f"ckpt_path={trained['ckpt']}",
        f"data.path={trained['root'] / 'bad.csv'}",
        *QUIET_APP,
        run_dir=trained["root"] / "predict_bad",
        monkeypatch=monkeypatch,
    )
    assert code == 2
    assert "missing column(s) ['noise']; extra column(s) ['extra']" in capsys.readouterr().err
    assert not (trained["root"] / "predict_bad" / "predictions.csv").exists()


def test_eval_and_predict_bad_inputs(trained, tmp_path, monkeypatch, capsys):
    ckpt = f"ckpt_path={trained['ckpt']}"
    unknown = trained["test"].copy()
    unknown.loc[[0, 3], "label"] = ["zeta", "delta"]
    unknown.to_csv(tmp_path / "unknown.csv", index=False)
    assert (
        run_app(
            "eval.py",
            ckpt,
            f"data.test_path={tmp_path / 'unknown.csv'}",
            run_dir=tmp_path / "e",
            monkeypatch=monkeypatch,
        )
        == 2
    )
    assert "label(s) ['delta', 'zeta'] that the training split lacks" in capsys.readouterr().err
    assert not (tmp_path / "e" / "metrics.json").exists()

    text = trained["test"].astype({"signal": str})
    text.loc[2, "signal"] = "high"
    text.to_csv(tmp_path / "text.csv", index=False)
    assert (
        run_app(
            "predict.py",
            ckpt,
            f"data.path={tmp_path / 'text.csv'}",
            run_dir=tmp_path / "p",
            monkeypatch=monkeypatch,
        )
        == 2
    )
    assert "column(s) ['signal'] were numeric in training but hold text here" in capsys.readouterr().err

    missing = trained["test"].copy()
    missing.loc[4, "noise"] = np.nan
    missing.to_csv(tmp_path / "nan.csv", index=False)
    assert (
        run_app(
            "predict.py",
            ckpt,
            f"data.path={tmp_path / 'nan.csv'}",
            run_dir=tmp_path / "p",
            monkeypatch=monkeypatch,
        )
        == 2
    )
    assert "missing (NaN/empty) values in column(s) {'noise': 1}" in capsys.readouterr().err
    assert not (tmp_path / "p" / "predictions.csv").exists()
