"""Nothing a user made is lost or cut off; CSVs open safely.

Run directories are refused before Hydra writes into them, outputs are written through a unique
temporary file and an atomic rename, copies of checkpoints are verified, and a run directory is
locked while a command runs in it.
"""

from __future__ import annotations

import csv
import fcntl
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from inprocess import run_app
from lightning.pytorch.callbacks import ModelCheckpoint
from tiny_run import feature_table

from imbalanced.errors import UserError
from imbalanced.reporting.end_of_run import write_confusion_csv
from imbalanced.reporting.run_files import write_json
from imbalanced.runs.atomic_writes import atomic_write, copy_verified
from imbalanced.runs.csv_cells import escape_formula
from imbalanced.runs.output_paths import check_not_among, check_output_file
from imbalanced.runs.safeguards import ResumeCheckpoints

QUIET_APP = ["+trainer.enable_progress_bar=false"]


def _training_run_dir(root: Path) -> Path:
    run = root / "train_run"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").write_text("the training run's config\n")
    (run / "metrics.json").write_text('{"test/accuracy": 0.9}\n')
    return run


# ---- eval/predict refuse a directory holding another run's outputs ----------------------
@pytest.mark.parametrize("script", ["eval.py", "predict.py"])
def test_eval_and_predict_refuse_a_training_run_dir(script, tmp_path, monkeypatch, capsys):
    run = _training_run_dir(tmp_path)
    data = "data.path" if script == "predict.py" else "data.test_path"
    code = run_app(
        script,
        f"ckpt_path={tmp_path / 'x.ckpt'}",
        f"{data}={tmp_path / 'x.csv'}",
        *QUIET_APP,
        run_dir=run,
        monkeypatch=monkeypatch,
    )
    err = capsys.readouterr().err
    assert code == 2
    assert f"error: hydra.run.dir={run} holds another run's outputs ['metrics.json']" in err
    assert (run / ".hydra" / "config.yaml").read_text() == "the training run's config\n"
    assert (run / "metrics.json").read_text() == '{"test/accuracy": 0.9}\n'
    assert not list(run.glob("*.log"))


def test_fresh_train_refuses_checkpoints_before_hydra_overwrites_the_config(tmp_path, monkeypatch, capsys):
    run = _training_run_dir(tmp_path)
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "last.ckpt").write_bytes(b"x")
    code = run_app("train.py", "data.n_samples=300", run_dir=run, monkeypatch=monkeypatch)
    assert code == 2
    assert "already holds checkpoints ['last.ckpt']" in capsys.readouterr().err
    assert (run / ".hydra" / "config.yaml").read_text() == "the training run's config\n"


def test_a_run_dir_that_cannot_be_created_is_one_error_line(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    code = run_app("eval.py", "ckpt_path=x.ckpt", run_dir=blocker / "run", monkeypatch=monkeypatch)
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"error: hydra.run.dir={blocker / 'run'} cannot be created")
    assert err.count("\n") == 1


# ---- a second command on a run directory in use is refused -----------------------------
def test_a_second_concurrent_run_in_the_same_dir_is_refused(tmp_path, monkeypatch, capsys):
    run = tmp_path / "busy"
    run.mkdir()
    with open(run / ".lock", "a+") as other:  # another process's lock (flock is per open file)
        fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        other.write("4242\n")
        other.flush()
        code = run_app("train.py", "data.n_samples=300", run_dir=run, monkeypatch=monkeypatch)
    assert code == 2
    assert "is in use by another running command (process 4242)" in capsys.readouterr().err
    assert not (run / ".hydra").exists()


# ---- item 10 and 14: predict's output is checked before any work --------------------------------
def test_predict_refuses_to_overwrite_its_input(tmp_path, monkeypatch, capsys):
    table = feature_table(tmp_path / "rows.csv")
    before = table.read_text()
    (tmp_path / "x.ckpt").write_bytes(b"")  # never read: the output is checked first
    code = run_app(
        "predict.py",
        f"ckpt_path={tmp_path / 'x.ckpt'}",
        f"data.path={table}",
        f"output_path={table}",
        *QUIET_APP,
        run_dir=tmp_path / "run",
        monkeypatch=monkeypatch,
    )
    assert code == 2
    assert f"output_path={table} is the input file data.path" in capsys.readouterr().err
    assert table.read_text() == before


def test_output_file_checks(tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("a\n1\n")
    link = tmp_path / "link.csv"
    link.symlink_to(source)
    with pytest.raises(UserError, match="is the input file data.path"):
        check_output_file("output_path", link, [("data.path", source)])
    with pytest.raises(UserError, match="is a directory"):
        check_output_file("output_path", tmp_path, [])
    (tmp_path / "f").write_text("")
    with pytest.raises(UserError, match="cannot be written"):
        check_output_file("output_path", tmp_path / "f" / "out.csv", [])
    assert check_output_file("output_path", tmp_path / "new" / "out.csv", [("data.path", source)])


# ---- every output is written atomically ------------------------------------------------
def test_an_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "metrics.json"
    write_json(path, {"a": 1})
    with pytest.raises(KeyboardInterrupt), atomic_write(path) as handle:
        handle.write('{"a": 2, "b"')
        raise KeyboardInterrupt
    assert path.read_text() == '{\n  "a": 1\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_write_json_uses_a_unique_temporary_file(tmp_path, monkeypatch):
    seen = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (seen.append(Path(a).name), real_replace(a, b)))
    write_json(tmp_path / "m.json", {})
    write_json(tmp_path / "m.json", {})
    assert len(set(seen)) == 2 and all(name.startswith(".m.json.") for name in seen)


def test_a_predict_killed_while_writing_leaves_no_partial_file(real_checkpoint, tmp_path, monkeypatch):
    table = feature_table(tmp_path / "rows.csv", rows=50)
    output = tmp_path / "out" / "predictions.csv"

    def dies_halfway(self, handle, **kwargs):
        handle.write("prediction,prob_class_0\nclass_0,0.9")
        raise KeyboardInterrupt  # as a SIGINT while writing

    monkeypatch.setattr(pd.DataFrame, "to_csv", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        run_app(
            "predict.py",
            f"ckpt_path={real_checkpoint}",
            f"data.path={table}",
            f"output_path={output}",
            *QUIET_APP,
            run_dir=tmp_path / "run",
            monkeypatch=monkeypatch,
        )
    assert not output.exists()
    assert list(output.parent.iterdir()) == []


# ---- the resumed run's copy of the best checkpoint is atomic and verified --------------
def test_resume_into_a_new_dir_replaces_a_truncated_copy(tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    best = old / "best-epoch003.ckpt"
    best.write_bytes(os.urandom(100_000))
    new.mkdir()
    (new / best.name).write_bytes(best.read_bytes()[:1000])  # an earlier copy, cut off
    callback = ModelCheckpoint(dirpath=new)
    trainer = SimpleNamespace(
        checkpoint_callbacks=[callback],
        is_global_zero=True,
        strategy=SimpleNamespace(barrier=lambda name: None),
    )
    state = {
        "dirpath": str(old),
        "best_k_models": {str(best): torch.tensor(0.5)},
        "best_model_path": str(best),
    }
    ResumeCheckpoints().on_load_checkpoint(trainer, None, {"callbacks": {callback.state_key: state}})
    assert (new / best.name).read_bytes() == best.read_bytes()
    assert state["best_model_path"] == str(new / best.name)
    assert sorted(p.name for p in new.iterdir()) == [best.name]


def test_copy_verified_refuses_a_copy_that_differs(tmp_path, monkeypatch):
    source = tmp_path / "a.ckpt"
    source.write_bytes(b"abc" * 1000)
    import shutil

    monkeypatch.setattr(shutil, "copyfileobj", lambda src, dst, size: dst.write(src.read()[:10]))
    with pytest.raises(OSError, match="differs from the original"):
        copy_verified(source, tmp_path / "b.ckpt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.ckpt"]


# ---- CSV quoting and spreadsheet formulas ----------------------------------------------
def test_confusion_csv_quotes_labels_and_escapes_formulas(tmp_path):
    names = ["a,b", 'say "hi"', "=HYPERLINK(1)", "-1", "+x", "@SUM(A1)"]
    path = write_confusion_csv(tmp_path / "cm.csv", np.eye(6, dtype=int), names)
    rows = list(csv.reader(path.open()))
    assert rows[0] == ["true\\predicted", "a,b", 'say "hi"', "'=HYPERLINK(1)", "-1", "'+x", "'@SUM(A1)"]
    assert [r[0] for r in rows[1:]] == rows[0][1:]
    assert all(len(r) == 7 for r in rows)


def test_escape_formula_keeps_numbers():
    assert escape_formula("-1") == "-1" and escape_formula("+2.5") == "+2.5"
    assert escape_formula("-x") == "'-x" and escape_formula("\tcmd") == "'\tcmd"
    assert escape_formula("cat") == "cat"


@pytest.mark.parametrize("escape", [True, False])
def test_predictions_escape_formula_class_names_by_default(escape, real_checkpoint, tmp_path, monkeypatch):
    checkpoint = torch.load(real_checkpoint, weights_only=True)
    names = ["=1+1", "a,b", "-1", "@x", "c"]
    checkpoint["hyper_parameters"]["class_names"] = names
    crafted = tmp_path / "named.ckpt"
    torch.save(checkpoint, crafted)
    table = feature_table(tmp_path / "rows.csv", rows=40)
    output = tmp_path / "pred.csv"
    code = run_app(
        "predict.py",
        f"ckpt_path={crafted}",
        f"data.path={table}",
        f"output_path={output}",
        f"escape_formulas={str(escape).lower()}",
        *QUIET_APP,
        run_dir=tmp_path / "run",
        monkeypatch=monkeypatch,
    )
    assert code == 0
    rows = list(csv.reader(output.open()))
    shown = [escape_formula(n) for n in names] if escape else names
    assert rows[0] == ["prediction", *(f"prob_{n}" for n in names)]
    assert len(rows) == 41 and {r[0] for r in rows[1:]} <= set(shown)
    assert all(len(r) == 6 for r in rows)


def test_a_plot_that_fails_while_saving_keeps_the_previous_png(tmp_path, monkeypatch):
    from imbalanced.reporting import plots

    figure = plots.class_distribution_figure(["a", "b"], [10, 2], [0.6, 3.0], "balanced")
    path = plots.save_figure(figure, tmp_path / "class_distribution.png")
    before = path.read_bytes()
    assert before.startswith(b"\x89PNG")

    def dies(handle, **kwargs):
        handle.write(b"\x89PNG half")
        raise KeyboardInterrupt

    monkeypatch.setattr(figure, "savefig", dies)
    with pytest.raises(KeyboardInterrupt):
        plots.save_figure(figure, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["class_distribution.png"]


@pytest.mark.parametrize("command", ["eval", "predict"])
def test_train_refuses_the_run_dir_of_an_eval_or_predict(command, tmp_path, monkeypatch, capsys):
    run = tmp_path / "other_run"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "hydra.yaml").write_text(f"hydra:\n  job:\n    name: {command}\n")
    (run / "metrics.json").write_text('{"test/accuracy": 0.5}\n')
    code = run_app("train.py", "data.n_samples=300", run_dir=run, monkeypatch=monkeypatch)
    err = capsys.readouterr().err
    assert code == 2
    assert f"error: hydra.run.dir={run} holds the outputs ['metrics.json'] of a {command}.py run" in err
    assert (run / "metrics.json").read_text() == '{"test/accuracy": 0.5}\n'
    assert (run / ".hydra" / "hydra.yaml").read_text() == f"hydra:\n  job:\n    name: {command}\n"


def test_predict_refuses_an_output_inside_its_input_folder_or_among_listed_inputs(tmp_path):
    folder = tmp_path / "images"
    (folder / "a").mkdir(parents=True)
    (folder / "a" / "1.png").write_bytes(b"x")
    for output in (folder / "a" / "1.png", folder / "predictions.csv"):
        with pytest.raises(UserError, match=f"is inside the input folder data.path={folder}"):
            check_output_file("output_path", output, [("data.path", str(folder))])
    listed = [str(tmp_path / "x.png"), str(tmp_path / "y.png")]
    with pytest.raises(UserError, match="is one of the input files listed by data.path=list.csv"):
        check_not_among("output_path", tmp_path / "sub" / ".." / "y.png", listed, "data.path=list.csv")
    check_not_among("output_path", tmp_path / "out.csv", listed, "data.path=list.csv")
