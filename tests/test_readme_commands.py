"""Every README command a newcomer copies is run by a test, from README.md itself: a stale snippet
fails here. The fork example's commands run in tests/test_fork_example.py."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from inprocess import run_app
from readme_commands import readme_commands, readme_yaml

from conftest import read_json
from imbalanced.runs.config_checks import check_config

FORK = Path(__file__).resolve().parent / "fork_example"
# words that stand for the reader's own files, machines or extras: those commands cannot run as they are
PLACEHOLDERS = (
    "DIR",
    "TRAIN",
    "VAL",
    "TEST",
    "CKPT",
    "RUN/",
    "DATE",
    "data/",
    "~/",
    "labels.csv",
    ".pth",
    "$",
    "fork_example",
    "trainer=gpu",
    "trainer=ddp",
    "hparams_search=optuna",
    "logger=tensorboard",
    "-m",
    "--cfg",
)
SMALL = ["data.n_samples=1500", "trainer.max_epochs=1", "callbacks.progress_bar.refresh_rate=0"]


def runnable(command: list[str]) -> bool:
    return not any(mark in word for word in command for mark in PLACEHOLDERS)


def test_the_readme_shows_the_fork_example_s_yaml_files():
    for name in ("configs/data/digit_images.yaml", "configs/model/tiny_cnn.yaml"):
        file = (FORK / name).read_text()
        without_comments = "".join(line for line in file.splitlines(True) if not line.startswith("#"))
        assert readme_yaml(name) == without_comments, name


@pytest.mark.slow  # about 25 compositions
def test_every_readme_train_command_composes_and_passes_the_config_check(compose_cfg, tmp_path):
    commands = [c for c in readme_commands("train.py") if runnable(c)]
    assert len(commands) >= 20  # the Quickstart, command-line and technique examples
    for command in commands:
        check_config(compose_cfg(*command, f"paths.output_dir={tmp_path}"))


@pytest.mark.slow
def test_quickstart_then_the_eval_and_predict_examples_run(tmp_path, monkeypatch):
    """`python train.py data=synthetic` (small), then the README's eval.py and predict.py examples
    with CKPT, data/holdout.csv and data/new.csv made real."""
    quickstart = readme_commands("train.py")[0]
    assert quickstart == ["data=synthetic"]
    run = tmp_path / "run"
    assert run_app("train.py", *quickstart, *SMALL, run_dir=run, monkeypatch=monkeypatch) == 0
    checkpoint = str(run / "checkpoints" / "last.ckpt")
    table = pd.DataFrame({f"x{i}": [0.1 * i, -0.2 * i, 0.3] for i in range(20)})
    (tmp_path / "data").mkdir()
    table.assign(y=["class_0", "class_1", "class_4"]).to_csv(tmp_path / "data" / "holdout.csv", index=False)
    monkeypatch.chdir(tmp_path)  # the examples' relative paths (data/new.csv, preds.csv)

    def real(word: str) -> str:
        word = word.replace("CKPT", checkpoint)
        if word.startswith("ckpt_path=outputs/"):
            return f"ckpt_path={checkpoint}"
        return word

    evals = [
        c
        for c in readme_commands("eval.py")
        if "data/holdout.csv" in " ".join(c) or "ckpt_path=outputs/" in " ".join(c)
    ]
    predicts = [c for c in readme_commands("predict.py") if "data/new.csv" in " ".join(c)]
    assert len(evals) == 2 and len(predicts) == 4
    for number, command in enumerate(evals):
        extra = ["+data.target=y"] if "data.test_path=data/holdout.csv" in command else []
        out = tmp_path / f"eval{number}"
        code = run_app(
            "eval.py",
            *map(real, command),
            *extra,
            "+trainer.enable_progress_bar=false",
            run_dir=out,
            monkeypatch=monkeypatch,
        )
        assert code == 0, command
        assert 0.0 <= read_json(out / "metrics.json")["test/balanced_accuracy"] <= 1.0
    for number, command in enumerate(predicts):
        # the id column is an extra, refused column unless the command names it (+data.id, keep_columns)
        named = "+data.id=customer_id" in command or "+data.keep_columns=true" in command
        (table.assign(customer_id=["a", "b", "c"]) if named else table).to_csv(
            tmp_path / "data" / "new.csv", index=False
        )
        out = tmp_path / f"predict{number}"
        code = run_app(
            "predict.py",
            *map(real, command),
            "+trainer.enable_progress_bar=false",
            run_dir=out,
            monkeypatch=monkeypatch,
        )
        assert code == 0, command
        written = tmp_path / "preds.csv" if "output_path=preds.csv" in command else out / "predictions.csv"
        assert len(pd.read_csv(written)) == 3
    assert list(pd.read_csv(tmp_path / "predict2" / "predictions.csv").columns[:2]) == [
        "customer_id",
        "prediction",
    ]
