"""A fixed test source that is the training data is refused (data/test_overlap.py): in train.py for
tables and image folders, and in eval.py against the checkpoint's saved training data."""

from __future__ import annotations

import logging
import os

import pytest
import torch
from image_trees import image_tree
from inprocess import run_app
from tabular_tables import make_table
from tiny_run import feature_table

from imbalanced.data.test_overlap import check_test_is_not_train
from imbalanced.errors import UserError

QUIET = ["+trainer.enable_progress_bar=false"]


def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


def test_train_refuses_a_test_table_that_is_the_training_table(tmp_path, monkeypatch, capsys):
    table = tmp_path / "data.csv"
    make_table().to_csv(table, index=False)
    os.symlink(table, tmp_path / "same.csv")  # another name for the same file
    code = run_app(
        "train.py",
        "data=tabular",
        f"data.path={table}",
        "data.target=label",
        f"data.test_path={tmp_path / 'same.csv'}",
        run_dir=tmp_path / "run",
        monkeypatch=monkeypatch,
    )
    lines = _error_lines(capsys.readouterr().err)
    assert code == 2 and len(lines) == 1
    assert f"data.test_path={tmp_path / 'same.csv'} is data.path={table}" in lines[0]
    assert "allow_test_overlap=true" in lines[0]
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_train_refuses_a_test_folder_that_is_the_training_folder(tmp_path, monkeypatch, capsys):
    root = image_tree(tmp_path / "images", {"cat": 3, "dog": 3})
    code = run_app(
        "train.py",
        "data=image_folder",
        f"data.root={root}",
        f"data.test_dir={root}/",
        run_dir=tmp_path / "run",
        monkeypatch=monkeypatch,
    )
    lines = _error_lines(capsys.readouterr().err)
    assert code == 2 and len(lines) == 1 and f"data.test_dir={root}/ is data.root={root}" in lines[0]


def test_eval_refuses_the_checkpoints_training_file_as_test_data(
    real_checkpoint, tmp_path, monkeypatch, capsys
):
    train_file = feature_table(tmp_path / "train.csv", rows=20)
    checkpoint = torch.load(real_checkpoint, weights_only=True)
    checkpoint["hyper_parameters"]["data"]["config"]["path"] = str(train_file)  # trained on that file
    checkpoint["hyper_parameters"]["data"]["config"]["target"] = "x0"
    ckpt = tmp_path / "table.ckpt"
    torch.save(checkpoint, ckpt)
    code = run_app(
        "eval.py",
        f"ckpt_path={ckpt}",
        f"data.test_path={train_file}",
        *QUIET,
        run_dir=tmp_path / "run",
        monkeypatch=monkeypatch,
    )
    lines = _error_lines(capsys.readouterr().err)
    assert code == 2 and len(lines) == 1
    assert f"is the checkpoint's training data data.path={train_file}" in lines[0]
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_the_check_compares_files_and_folders_and_can_be_allowed(tmp_path, caplog):
    (tmp_path / "a.csv").write_text("x\n")
    (tmp_path / "b.csv").write_text("x\n")
    os.link(tmp_path / "a.csv", tmp_path / "hard.csv")
    (tmp_path / "root" / "test").mkdir(parents=True)
    check_test_is_not_train({"path": str(tmp_path / "a.csv"), "test_path": str(tmp_path / "b.csv")})
    check_test_is_not_train({"path": str(tmp_path / "a.csv"), "test_path": None})
    for config in (
        {"path": str(tmp_path / "a.csv"), "test_path": str(tmp_path / "hard.csv")},
        {"root": str(tmp_path / "root"), "test_dir": str(tmp_path / "root" / "test")},
        {"train_dir": str(tmp_path / "root" / "test"), "test_dir": str(tmp_path / "root")},
    ):
        with pytest.raises(UserError, match="every test row would be a training row"):
            check_test_is_not_train(config)
    with caplog.at_level(logging.WARNING):
        check_test_is_not_train({"path": "a.csv", "test_path": "./a.csv"}, allow=True)
    assert "scored anyway: allow_test_overlap=true" in caplog.text
