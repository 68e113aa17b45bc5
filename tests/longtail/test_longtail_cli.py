"""The long-tail techniques end to end through `python train.py`."""

import pytest
from inprocess import run_app

from conftest import read_json


@pytest.mark.slow
def test_cli_focal_with_drw_and_class_balanced_sampler(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    code = run_app(
        "train.py",
        "data=digits",
        "loss=focal",
        "loss.gamma=1.0",
        "class_weights=effective_number",
        "drw_start_epoch=1",
        "sampler=sqrt",
        "posthoc_tau=0.5",
        "trainer.max_epochs=2",
        "callbacks.progress_bar.refresh_rate=0",
        run_dir=run_dir,
        monkeypatch=monkeypatch,
    )
    assert code == 0
    assert "DRW: uniform class weights until epoch 1" in (run_dir / "train.log").read_text()
    metrics = read_json(run_dir / "metrics.json")
    for stage in ("val", "test"):
        for group in ("head", "medium", "tail"):
            assert 0.0 <= metrics[f"{stage}/{group}_recall"] <= 1.0
    assert metrics["tail_classes"] == ["7", "8", "9"]
    weights = read_json(run_dir / "class_weights.json")
    assert weights["counts"][0] > weights["counts"][-1]
    assert (run_dir / "checkpoints" / "last.ckpt").exists()


def test_cli_bad_technique_setting_fails_before_training(tmp_path, monkeypatch, capsys):
    # the other bad settings are checked in-process in test_posthoc_and_groups.py
    code = run_app(
        "train.py",
        "data=digits",
        "loss=focal",
        "loss.gamma=-1",
        run_dir=tmp_path / "bad",
        monkeypatch=monkeypatch,
    )
    err = capsys.readouterr().err
    assert code == 2, err[-2000:]
    assert "error: loss.gamma=-1 is invalid; allowed: a finite number in [0, inf)" in err
    assert not (tmp_path / "bad" / "checkpoints").exists()
