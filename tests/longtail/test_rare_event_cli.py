"""Rare events end to end: a 0.5%-positive binary run, then eval.py and predict.py on its checkpoint.

The apps run in-process (tests/inprocess.py). One training run (module fixture) is shared.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from inprocess import run_app
from png_checks import assert_png

from conftest import read_json
from imbalanced.reporting.end_of_run import RARE_EVENT_PLOT_FILES

QUIET = ["callbacks.progress_bar.refresh_rate=0"]
QUIET_APP = ["+trainer.enable_progress_bar=false"]
RARE = [
    "data=synthetic",
    "data.num_classes=2",
    "data.imbalance_ratio=200",
    "data.n_samples=12000",
    "trainer.max_epochs=3",
]


@pytest.fixture(scope="module")
def rare_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("rare")
    monkeypatch = pytest.MonkeyPatch()
    try:
        code = run_app("train.py", *RARE, *QUIET, run_dir=root / "run", monkeypatch=monkeypatch)
    finally:
        monkeypatch.undo()
    assert code == 0
    assert sorted((root / "run" / "checkpoints").glob("best-*.ckpt"))
    # the checkpoint the training run tested (metrics.json names it), so eval.py must reproduce it
    tested = read_json(root / "run" / "metrics.json")["tested_checkpoint"]
    return {"root": root, "run": root / "run", "ckpt": root / "run" / tested}


@pytest.mark.slow
def test_one_rare_event_run_gives_ap_threshold_calibration_and_plots(rare_run):
    metrics = read_json(rare_run["run"] / "metrics.json")
    for stage in ("val", "test"):
        for name in ("average_precision", "roc_auc", "ece", "brier", "precision", "recall", "f1"):
            assert 0.0 <= metrics[f"{stage}/{name}"] <= 1.0, (stage, name)
    assert metrics["positive_class"] == "class_1"  # the minority class
    assert metrics["decision_rule"] == "max_f1"  # the default for two classes
    assert 0.0 < metrics["decision_threshold"] < 1.0
    assert metrics["calibration"] in ("closed_form", "fitted") and metrics["calibration_temperature"] > 0
    assert metrics["test/ece"] < metrics["test/ece_raw"]  # calibrated beats the raw softmax
    assert metrics["test/recall"] == pytest.approx(metrics["test/per_class_recall"][1], abs=1e-6)
    for name in RARE_EVENT_PLOT_FILES:
        assert_png(rare_run["run"] / name)


def _test_table(rare_run) -> pd.DataFrame:
    from omegaconf import OmegaConf

    from imbalanced.from_config import build_datamodule

    datamodule = build_datamodule(OmegaConf.load(rare_run["run"] / ".hydra" / "config.yaml"))
    datamodule.setup("test")
    splits = datamodule.splits
    names = list(splits.feature_names) or [f"x{i}" for i in range(splits.x_test.shape[1])]
    frame = pd.DataFrame(splits.x_test, columns=names)
    return frame.assign(label=splits.y_test)


@pytest.mark.slow
def test_eval_and_predict_use_the_saved_threshold_and_calibration(rare_run, monkeypatch):
    training = read_json(rare_run["run"] / "metrics.json")
    ckpt = f"ckpt_path={rare_run['ckpt']}"
    assert (
        run_app("eval.py", ckpt, *QUIET_APP, run_dir=rare_run["root"] / "eval", monkeypatch=monkeypatch) == 0
    )
    evaluated = read_json(rare_run["root"] / "eval" / "metrics.json")
    keys = ("test/average_precision", "test/f1", "test/ece", "test/balanced_accuracy", "decision_threshold")
    for key in keys:
        assert evaluated[key] == pytest.approx(training[key], abs=1e-6), key

    # overriding the threshold moves the decisions (and only them)
    assert (
        run_app(
            "eval.py",
            ckpt,
            "decision.threshold=0.999",
            *QUIET_APP,
            run_dir=rare_run["root"] / "eval_high",
            monkeypatch=monkeypatch,
        )
        == 0
    )
    high = read_json(rare_run["root"] / "eval_high" / "metrics.json")
    assert high["decision_threshold"] == pytest.approx(0.999) and high["decision_rule"] == "threshold"
    assert high["test/recall"] <= evaluated["test/recall"]
    assert high["test/average_precision"] == pytest.approx(evaluated["test/average_precision"])

    # a new rule chooses a new threshold on the checkpoint's validation split
    assert (
        run_app(
            "eval.py",
            ckpt,
            "decision.rule=recall_at",
            "decision.target=1.0",
            *QUIET_APP,
            run_dir=rare_run["root"] / "eval_rule",
            monkeypatch=monkeypatch,
        )
        == 0
    )
    by_rule = read_json(rare_run["root"] / "eval_rule" / "metrics.json")
    assert by_rule["decision_rule"] == "recall_at"
    assert by_rule["decision_threshold"] <= training["decision_threshold"]  # recall 1 on validation
    assert by_rule["test/recall"] >= training["test/recall"]
    assert (
        run_app(
            "eval.py",
            ckpt,
            "decision.rule=max_f1",
            "decision.threshold=0.5",
            *QUIET_APP,
            run_dir=rare_run["root"] / "eval_both",
            monkeypatch=monkeypatch,
        )
        == 2
    )

    table = _test_table(rare_run)
    table.to_csv(rare_run["root"] / "rows.csv", index=False)
    outputs = {}
    for name, extra in (("calibrated", []), ("raw", ["calibration=none"])):
        output = rare_run["root"] / f"{name}.csv"
        code = run_app(
            "predict.py",
            ckpt,
            f"data.path={rare_run['root'] / 'rows.csv'}",
            "+data.target=label",
            f"output_path={output}",
            *extra,
            *QUIET_APP,
            run_dir=rare_run["root"] / name,
            monkeypatch=monkeypatch,
        )
        assert code == 0
        outputs[name] = pd.read_csv(output)
    calibrated, raw = outputs["calibrated"], outputs["raw"]
    # the prediction is prob_<positive> >= the saved threshold; calibration=none keeps the decisions
    flagged = calibrated["prob_class_1"] >= training["decision_threshold"]
    assert ((calibrated["prediction"] == "class_1") == flagged).all()
    assert (calibrated["prediction"] == raw["prediction"]).all()
    correct = (calibrated["prediction"] == table["label"].map({0: "class_0", 1: "class_1"})).mean()
    assert correct == pytest.approx(training["test/accuracy"], abs=1e-6)
    # calibrated probabilities no longer overstate the rare class the weights favoured in training
    positives = (table["label"] == 1).mean()
    assert abs(calibrated["prob_class_1"].mean() - positives) < abs(raw["prob_class_1"].mean() - positives)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["decision.rule=max_f1"],
            "error: decision.rule=max_f1 needs a binary problem; this data has 5 classes",
        ),
        (["decision.rule=cost", "decision.cost_fp=0"], "error: decision.cost_fp=0 is invalid"),
        (["decision.rule=recall_at"], "error: decision.target=None is invalid for decision.rule=recall_at"),
        (
            ["calibration=platt"],
            "error: calibration='platt' is invalid; allowed: one of auto, closed_form, fitted",
        ),
        (["loss=bce"], "error: loss=bce needs a binary problem; this data has 5 classes"),
    ],
)
def test_bad_rare_event_settings_stop_before_training(overrides, message, tmp_path, monkeypatch, capsys):
    code = run_app(
        "train.py", "data.n_samples=2000", *overrides, *QUIET, run_dir=tmp_path, monkeypatch=monkeypatch
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith(message)
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.slow
def test_bce_rare_event_run(tmp_path, monkeypatch):
    code = run_app(
        "train.py",
        *RARE,
        "loss=bce",
        "trainer.max_epochs=1",
        "decision.rule=recall_at",
        "decision.target=0.5",
        *QUIET,
        run_dir=tmp_path,
        monkeypatch=monkeypatch,
    )
    assert code == 0
    metrics = read_json(tmp_path / "metrics.json")
    assert metrics["decision_rule"] == "recall_at" and metrics["val/recall"] >= 0.5
    assert np.isfinite(metrics["test/average_precision"])


@pytest.mark.slow
def test_ddp_binary_run_matches_a_single_process_evaluation(tmp_path, monkeypatch):
    """Validation logits are gathered from both ranks for the fit; test metrics sync across ranks."""
    from conftest import run_cli

    result = run_cli(
        "train.py",
        *RARE,
        "data.n_samples=8000",
        "trainer.max_epochs=2",
        "trainer=ddp_cpu",
        "refit_with_validation=false",  # the refit under DDP: tests/runs/test_ddp.py
        *QUIET,
        run_dir=tmp_path / "ddp",
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    trained = read_json(tmp_path / "ddp" / "metrics.json")
    assert trained["tested_checkpoint"] == "checkpoints/last.ckpt"
    tested = tmp_path / "ddp" / trained["tested_checkpoint"]
    assert (
        run_app(
            "eval.py", f"ckpt_path={tested}", *QUIET_APP, run_dir=tmp_path / "eval", monkeypatch=monkeypatch
        )
        == 0
    )
    evaluated = read_json(tmp_path / "eval" / "metrics.json")
    for key in (
        "test/average_precision",
        "test/roc_auc",
        "test/f1",
        "test/ece",
        "test/brier",
        "decision_threshold",
    ):
        assert evaluated[key] == pytest.approx(trained[key], abs=1e-5), key
    # the threshold and calibration in the DDP checkpoint are those fitted on the whole validation
    # split (both ranks' halves), not on one rank's half
    import torch
    from omegaconf import OmegaConf

    from imbalanced.classifier import ImbalancedClassifier
    from imbalanced.from_config import build_datamodule

    best = next((tmp_path / "ddp" / "checkpoints").glob("best-*.ckpt"))
    model = ImbalancedClassifier.load_from_checkpoint(best, map_location="cpu").eval()
    saved = model.prediction_policy.state_dict()
    datamodule = build_datamodule(OmegaConf.load(tmp_path / "ddp" / ".hydra" / "config.yaml"))
    datamodule.setup("fit")
    with torch.no_grad():
        logits = model(torch.as_tensor(datamodule.splits.x_val))
    model.prediction_policy.fit(
        logits,
        torch.as_tensor(datamodule.splits.y_val),
        model.class_counts,
        model.class_weights,
        model.criterion,
    )
    assert model.prediction_policy.cut == pytest.approx(saved["cut"], abs=1e-4)
    assert model.prediction_policy.temperature == pytest.approx(saved["temperature"], rel=1e-3)
