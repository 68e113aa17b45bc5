"""Hydra's own errors (an unknown option, key or override) and a misspelt `+key` are one line."""

from __future__ import annotations

import pytest
from inprocess import run_app


def _one_error_line(capsys) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    assert "HYDRA_FULL_ERROR" not in lines[0]
    return lines[0]


@pytest.mark.parametrize("script", ["train.py", "eval.py", "predict.py"])
def test_an_unknown_option_of_a_config_group_is_one_line(script, tmp_path, monkeypatch, capsys):
    code = run_app(script, "trainer=gpuu", run_dir=tmp_path, monkeypatch=monkeypatch)
    line = _one_error_line(capsys)
    assert code == 2
    assert "trainer=gpuu" in line
    assert "allowed: cpu, ddp, ddp_cpu, default, gpu, mps" in line
    assert "(closest: trainer=gpu)" in line


def test_an_unknown_data_option_lists_the_data_options(tmp_path, monkeypatch, capsys):
    code = run_app("train.py", "data=nosuch", run_dir=tmp_path, monkeypatch=monkeypatch)
    line = _one_error_line(capsys)
    assert code == 2
    assert line.startswith("error: data=nosuch is not an option of the config group `data`; allowed: ")
    assert "synthetic" in line and "image_folder" in line


@pytest.mark.parametrize("script", ["eval.py", "predict.py"])
def test_a_data_option_on_eval_or_predict_lists_the_data_settings(script, tmp_path, monkeypatch, capsys):
    # their `data` holds overrides of the checkpoint's data config: there are no options to pick
    code = run_app(script, "data=nosuch", run_dir=tmp_path, monkeypatch=monkeypatch)
    line = _one_error_line(capsys)
    assert code == 2
    assert line.startswith(f"error: data=nosuch is not valid here: `data` of {script} is a group of settings")
    assert "allowed: data.KEY=VALUE (" in line and "data.num_workers" in line


@pytest.mark.parametrize("script", ["train.py", "eval.py", "predict.py"])
def test_an_override_that_does_not_parse_is_one_line_naming_it(script, tmp_path, monkeypatch, capsys):
    code = run_app(script, "trainer.max_epochs=[1", run_dir=tmp_path, monkeypatch=monkeypatch)
    line = _one_error_line(capsys)
    assert code == 2
    assert "'trainer.max_epochs=[1' cannot be parsed" in line and "allowed: key=value" in line


def test_an_unknown_key_is_one_line_with_the_closest_key(tmp_path, monkeypatch, capsys):
    code = run_app("train.py", "data.n_sampels=3", run_dir=tmp_path, monkeypatch=monkeypatch)
    line = _one_error_line(capsys)
    assert code == 2
    assert "data.n_sampels=3 is not a setting" in line and "(closest: data.n_samples)" in line


def test_hydra_full_error_keeps_hydras_report(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(Exception, match="Could not find 'data/nosuch'"):
        run_app("train.py", "data=nosuch", run_dir=tmp_path, monkeypatch=monkeypatch)


def test_help_and_cfg_still_work(tmp_path, monkeypatch, capsys):
    assert run_app("train.py", "--cfg", "job", "data=digits", run_dir=tmp_path, monkeypatch=monkeypatch) == 0
    assert "DigitsDataModule" in capsys.readouterr().out
    assert run_app("train.py", "--help", run_dir=tmp_path, monkeypatch=monkeypatch) == 0
    assert "Configuration groups" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("script", "typo", "closest"),
    [
        ("train.py", "+calibraton=none", "calibration=none"),
        ("train.py", "++drw_start_epcoh=3", "drw_start_epoch=3"),
        ("eval.py", "+trusted_target=[my_pkg.X]", "trusted_targets=[my_pkg.X]"),
        ("predict.py", "+escape_formula=false", "escape_formulas=false"),
    ],
)
def test_a_misspelt_top_level_key_added_with_plus_is_refused(
    script, typo, closest, tmp_path, monkeypatch, capsys
):
    code = run_app(script, typo, run_dir=tmp_path, monkeypatch=monkeypatch)
    line = _one_error_line(capsys)
    assert code == 2
    assert line.startswith(f"error: {typo} is refused: no code reads a top-level key")
    assert f"allowed: {closest} (the closest key)" in line


def test_declared_keys_and_target_parameters_may_still_be_added(tmp_path, monkeypatch, capsys):
    # ++ of a declared key and + of a target's parameter reach the task's own checks
    code = run_app(
        "train.py",
        "++seed=3",
        "experiment=synthetic_longtail",
        "+trainer.num_nodes=1",
        "data.n_samples=-5",
        run_dir=tmp_path,
        monkeypatch=monkeypatch,
    )
    line = _one_error_line(capsys)
    assert code == 2
    assert line.startswith("error: data.n_samples=-5 is invalid")
