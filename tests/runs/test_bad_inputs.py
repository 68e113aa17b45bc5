"""Every bad input through the command line: exit code 2, a one-line `error: ...` naming the file,
column or labels and what is valid, and no training started (no checkpoints).

The apps run in-process (tests/inprocess.py: the same Hydra parsing and error handling as
`python train.py ...`); test_eval_predict.py checks the exit code of real subprocesses.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from inprocess import run_app
from tabular_tables import make_table


def _nan(frame):
    frame.loc[3, "noise"] = np.nan
    return frame


def _inf(frame):
    frame.loc[5, "signal"] = np.inf
    return frame


def _one_class(frame):
    return frame.assign(label="alpha")


def _rare(frame, rows=2):
    frame = frame[frame["label"] != "gamma"].copy()
    frame.loc[frame.index[:rows], "label"] = "gamma"
    return frame


BAD_TABLES = {
    "missing target column": (
        lambda f: f.rename(columns={"label": "y"}),
        (),
        r"data.target=label: no such column .*columns: 'signal', 'noise', 'color', 'flag', 'y'",
    ),
    "header only": (lambda f: f.iloc[:0], (), "no data rows"),
    "one class": (_one_class, (), r"only one class \['alpha'\]"),
    "NaN values": (_nan, (), r"missing \(NaN/empty\) values in column\(s\) \{'noise': 1\}"),
    "infinite values": (_inf, (), r"infinite values in column\(s\) \{'signal': 1\}"),
    "empty labels": (
        lambda f: f.assign(label=f["label"].where(f.index != 7)),
        (),
        "label column 'label' has 1 empty",
    ),
    "class too rare to stratify": (_rare, (), r"class\(es\) \{'gamma': 2\} .* too rare .* at least 3 rows"),
    "rare class split away from training": (
        lambda f: _rare(f, rows=3),
        ("data.val_fraction=0.45", "data.test_fraction=0.45"),
        r"class\(es\) \['gamma'\] got no training rows from the stratified split",
    ),
    "text column rejected": (
        lambda f: f,
        ("data.categorical=error",),
        r"text \(categorical\) column\(s\) \['color'\]",
    ),
    "too many categories": (
        lambda f: f.assign(color=[f"c{i}" for i in range(len(f))]),
        (),
        r"text column 'color' has 210 distinct values in the training split, more than "
        "data.max_categories=100",
    ),
    "unknown drop column": (lambda f: f, ("data.drop_columns=[nope]",), r"data.drop_columns .* \['nope'\]"),
}


def _train_fails(tmp_path, monkeypatch, capsys, *overrides: str) -> str:
    run_dir = tmp_path / "run"
    code = run_app(
        "train.py",
        "data=tabular",
        "data.target=label",
        "trainer.max_epochs=1",
        *overrides,
        run_dir=run_dir,
        monkeypatch=monkeypatch,
    )
    stderr = capsys.readouterr().err
    assert code == 2, stderr[-2000:]
    assert not (run_dir / "checkpoints").exists()
    return stderr


@pytest.mark.parametrize("case", list(BAD_TABLES))
def test_bad_tables(tmp_path, monkeypatch, capsys, case):
    change, overrides, message = BAD_TABLES[case]
    change(make_table(300)).to_csv(tmp_path / "train.csv", index=False)
    stderr = _train_fails(tmp_path, monkeypatch, capsys, f"data.path={tmp_path / 'train.csv'}", *overrides)
    assert re.search(r"^error: .*" + message, stderr, flags=re.MULTILINE), stderr[-2000:]


def test_bad_files(tmp_path, monkeypatch, capsys):
    stderr = _train_fails(tmp_path, monkeypatch, capsys, f"data.path={tmp_path / 'missing.csv'}")
    missing = tmp_path / "missing.csv"
    assert f"error: data.path='{missing}' is invalid; allowed: a path to an existing file" in stderr
    (tmp_path / "empty.csv").write_text("")
    stderr = _train_fails(tmp_path, monkeypatch, capsys, f"data.path={tmp_path / 'empty.csv'}")
    assert "empty.csv: the file is empty" in stderr
    (tmp_path / "table.xlsx").write_text("a,b")
    stderr = _train_fails(tmp_path, monkeypatch, capsys, f"data.path={tmp_path / 'table.xlsx'}")
    assert "unknown file type; valid suffixes: .csv" in stderr
    stderr = _train_fails(tmp_path, monkeypatch, capsys, "data.path=null")
    assert "error: data.path is not set" in stderr


def test_fixed_files_must_match_training(tmp_path, monkeypatch, capsys):
    make_table(300).to_csv(tmp_path / "train.csv", index=False)
    test = make_table(40, seed=3)
    test.loc[[0, 1], "label"] = ["delta", "omega"]
    test.to_csv(tmp_path / "test.csv", index=False)
    stderr = _train_fails(
        tmp_path,
        monkeypatch,
        capsys,
        f"data.path={tmp_path / 'train.csv'}",
        f"data.test_path={tmp_path / 'test.csv'}",
    )
    assert "label(s) ['delta', 'omega'] that the training split lacks" in stderr
    make_table(40).drop(columns=["noise"]).to_csv(tmp_path / "val.csv", index=False)
    stderr = _train_fails(
        tmp_path,
        monkeypatch,
        capsys,
        f"data.path={tmp_path / 'train.csv'}",
        f"data.val_path={tmp_path / 'val.csv'}",
    )
    assert f"data.val_path={tmp_path / 'val.csv'}: the columns do not match" in stderr
    assert "missing column(s) ['noise']" in stderr
