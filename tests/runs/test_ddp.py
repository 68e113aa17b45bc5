"""DDP on the CPU (2 processes): same weights on every rank, whole-test-set metrics, outputs once
(torchrun launches: tests/runs/test_ddp_shards.py)."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, recall_score

from conftest import FAST, read_json, run_cli
from imbalanced.errors import UserError
from imbalanced.runs.config_checks import check_config

WEIGHTS_LINE = re.compile(r"rank (\d) class_weights (\[.*\])")


def _test_split_predictions(run_dir, ckpt):
    """Single-process evaluation of `ckpt` on the whole test split of the run's own config."""
    from omegaconf import OmegaConf

    from imbalanced.classifier import ImbalancedClassifier
    from imbalanced.from_config import build_datamodule

    cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    datamodule = build_datamodule(cfg)
    datamodule.setup("test")
    model = ImbalancedClassifier.load_from_checkpoint(ckpt, map_location="cpu").eval()
    with torch.no_grad():
        predicted = model(torch.as_tensor(datamodule.splits.x_test)).argmax(-1).numpy()
    return datamodule.splits.y_test, predicted


@pytest.mark.slow
def test_ddp_cpu_weights_equal_metrics_whole_test_set_outputs_once(tmp_path):
    # reduction=none: the per-class training loss is summed over the ranks (strategy.reduce)
    result = run_cli(
        "train.py", *FAST, "trainer=ddp_cpu", "loss.reduction=none", run_dir=tmp_path, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    logged = pd.read_csv(tmp_path / "csv" / "metrics.csv")
    class_loss = logged[[c for c in logged.columns if c.startswith("train/class_loss/")]].dropna()
    assert class_loss.shape == (2, 5) and np.isfinite(class_loss.to_numpy()).all()  # 2 epochs, 5 classes

    # identical class weights on every rank, each logged in its own log file (and all_gather-checked):
    # the first model's (training split) and the refit model's (training + validation, a table refits)
    rank_logs = {0: tmp_path / "train.log", 1: tmp_path / "train_ddp_process_1.log"}
    weights = {}
    for rank, log in rank_logs.items():
        found = WEIGHTS_LINE.findall(log.read_text())
        assert [int(r) for r, _ in found] == [rank, rank], (rank, found)
        weights[rank] = [json.loads(line) for _, line in found]
    assert weights[0] == weights[1]
    report = read_json(tmp_path / "class_weights.json")
    # the log shows 4 significant digits; the ranks' exact weights are compared by all_gather in the run
    assert np.allclose(weights[0][0], report["weights"], rtol=1e-3)
    assert np.allclose(weights[0][1], report["refit_with_validation"]["weights"], rtol=1e-3)

    # outputs written once, by rank zero
    rank0, rank1 = (log.read_text() for log in rank_logs.values())
    # class_weights.json: the training split's, then again with the refit's weights added
    assert rank0.count("metrics.json") == 1 and rank0.count("class_weights.json") == 2
    assert "wrote " not in rank1

    # DDP test metrics equal a single-process evaluation of the tested (refit) checkpoint on the whole set
    metrics = read_json(tmp_path / "metrics.json")
    assert metrics["tested_checkpoint"] == "checkpoints/refit.ckpt"
    best = tmp_path / metrics["tested_checkpoint"]
    y_true, y_pred = _test_split_predictions(tmp_path, best)
    assert metrics["test/accuracy"] == pytest.approx(accuracy_score(y_true, y_pred), abs=1e-6)
    balanced = balanced_accuracy_score(y_true, y_pred)
    assert metrics["test/balanced_accuracy"] == pytest.approx(balanced, abs=1e-6)
    assert metrics["test/macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"), abs=1e-6)
    assert metrics["test/per_class_recall"] == pytest.approx(
        recall_score(y_true, y_pred, average=None).tolist(), abs=1e-6
    )


def test_multirun_with_ddp_is_refused_with_the_alternative(compose_cfg):
    cfg = compose_cfg("trainer=ddp_cpu", "hydra.mode=MULTIRUN")
    with pytest.raises(UserError, match=r"hydra multirun \(-m\) with trainer.strategy='ddp'.*for s in"):
        check_config(cfg)
    check_config(compose_cfg("trainer=cpu", "hydra.mode=MULTIRUN"))  # single-process sweeps are fine
    check_config(compose_cfg("trainer=ddp_cpu", "trainer.strategy=ddp_spawn", "hydra.mode=MULTIRUN"))


def test_torchrun_without_fixed_run_dir_is_refused(compose_cfg, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(UserError, match=r"hydra.run.dir is not set on a multi-process launch"):
        check_config(compose_cfg("trainer=ddp_cpu"))
    check_config(compose_cfg("trainer=ddp_cpu", "hydra.run.dir=/tmp/x"))


def test_multi_node_trainer_config_composes(compose_cfg):
    cfg = compose_cfg("trainer=ddp_cpu", "+trainer.num_nodes=2", "trainer.devices=4")
    check_config(cfg)
    assert (cfg.trainer.num_nodes, cfg.trainer.devices, cfg.trainer.strategy) == (2, 4, "ddp")
