"""Every README command a newcomer copies is run by a test, from README.md itself: a stale snippet
fails here. The fork example's commands run in tests/tasks/test_fork_example.py."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from image_trees import image_tree
from inprocess import run_app
from readme_commands import readme_commands, readme_yaml
from text_examples import write_texts

from conftest import read_json
from imbalanced.runs.config_checks import check_config

FORK = Path(__file__).resolve().parents[1] / "fork_example"
# commands that need a machine, an extra or a sweep this test does not start
NOT_HERE = ("trainer=gpu", "-m", "hparams_search=optuna", "logger=tensorboard")
TEXT_EXTRA = importlib.util.find_spec("tokenizers") is not None
SMALL = ["data.n_samples=1500", "trainer.max_epochs=1", "callbacks.progress_bar.refresh_rate=0"]


def test_the_readme_shows_the_fork_example_s_yaml_files():
    for name in ("configs/data/digit_images.yaml", "configs/model/tiny_cnn.yaml"):
        file = (FORK / name).read_text()
        without_comments = "".join(line for line in file.splitlines(True) if not line.startswith("#"))
        assert readme_yaml(name) == without_comments, name


def test_every_readme_snippet_is_one_a_test_checks():
    """YAML snippets are the fork example's files (above); no other code block could go stale."""
    text = (FORK.parents[1] / "README.md").read_text(encoding="utf-8")
    kinds = re.findall(r"^```(\w*)$", text, re.M)[::2]  # opening fences
    assert set(kinds) <= {"bash", "yaml", ""}, kinds
    assert kinds.count("yaml") == 2


def _with_real_files(command: list[str], root: Path) -> list[str]:
    """The README's placeholders (DIR, TRAIN, data/train.csv, RUN, ...) made real under `root`."""
    images = image_tree(root / "images", {"cat": 6, "dog": 6, "owl": 6})
    table = root / "train.csv"
    if not table.exists():
        rng = np.random.default_rng(0)
        frame = pd.DataFrame(rng.normal(size=(60, 3)), columns=["a", "b", "c"])
        frame.assign(label=["x", "y", "z"] * 20).to_csv(table, index=False)
    checkpoint = root / "run" / "checkpoints" / "last.ckpt"
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    checkpoint.touch()  # the config check asks only that it exists
    real = {"DIR": images, "TRAIN": images, "VAL": images, "TEST": images, "RUN": root / "run"}
    words = []
    for word in command:
        key, equals, value = word.partition("=")
        value = value.replace("data/train.csv", str(table)).replace("data/test.csv", str(table))
        if value == "data/tickets.csv":
            value = str(write_texts(root / "tickets.csv", {"billing": 30, "login": 12, "refund": 6}))
        head, _, rest = value.partition("/")
        if head in real:
            value = str(real[head]) + (f"/{rest}" if rest else "")
        words.append(f"{key}={value}" if equals else word)
    return words


@pytest.mark.slow  # about 30 compositions
def test_every_readme_train_command_composes_and_passes_the_config_check(compose_cfg, tmp_path):
    commands = [
        c
        for c in readme_commands("train.py")
        if not any(w in NOT_HERE or "fork_example" in w for w in c)  # the fork's: test_fork_example.py
        and (TEXT_EXTRA or "data=text" not in c)
    ]
    assert len(commands) >= 25  # every section's examples
    for command in commands:
        command = _with_real_files(command, tmp_path)
        overlap = ["allow_test_overlap=true"] if "data.val_dir" in " ".join(command) else []
        check_config(compose_cfg(*command, *overlap, f"paths.output_dir={tmp_path}/out"))


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


@pytest.mark.slow
def test_the_image_train_eval_and_predict_examples_run(tmp_path, monkeypatch):
    """The README's first image_folder command (one epoch), then its image eval.py and predict.py
    examples with CKPT, OTHER_DIR and NEW_DIR made real."""
    images = image_tree(tmp_path / "images", {"cat": 12, "dog": 12, "owl": 12})
    train = next(c for c in readme_commands("train.py") if "data.root=DIR" in c)
    train = [w.replace("=DIR", f"={images}") for w in train]
    run = tmp_path / "run"
    quiet = ["trainer.max_epochs=1", "callbacks.progress_bar.refresh_rate=0"]
    assert run_app("train.py", *train, *quiet, run_dir=run, monkeypatch=monkeypatch) == 0
    other = image_tree(tmp_path / "other", {"cat": 3, "dog": 3, "owl": 3})
    real = {"CKPT": str(run / "checkpoints" / "last.ckpt"), "OTHER_DIR": str(other), "NEW_DIR": str(other)}

    def made_real(command: list[str]) -> list[str]:
        return [
            key + "=" + real.get(value, value) if equals else key
            for key, equals, value in (w.partition("=") for w in command)
        ]

    (command,) = [c for c in readme_commands("eval.py") if "data.test_path=OTHER_DIR" in c]
    out = tmp_path / "eval"
    quiet = ["+trainer.enable_progress_bar=false"]
    assert run_app("eval.py", *made_real(command), *quiet, run_dir=out, monkeypatch=monkeypatch) == 0
    assert 0.0 <= read_json(out / "metrics.json")["test/balanced_accuracy"] <= 1.0
    (command,) = [c for c in readme_commands("predict.py") if "data.path=NEW_DIR" in c]
    out = tmp_path / "predict"
    assert run_app("predict.py", *made_real(command), *quiet, run_dir=out, monkeypatch=monkeypatch) == 0
    assert len(pd.read_csv(out / "predictions.csv")) == 9  # one row per image


def test_every_readme_link_and_path_exists():
    """Links to docs and the source paths the README names are files of this repository."""
    root = FORK.parents[1]
    text = (root / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text)
    paths = re.findall(
        r"`((?:src/imbalanced|data|models|longtail|configs|tests)/[\w/.]+\.(?:py|yaml))`", text
    )
    assert links and paths
    package = root / "src" / "imbalanced"
    missing = [p for p in links if not (root / p).exists()]
    missing += [p for p in paths if not ((root / p).exists() or (package / p).exists())]
    assert not missing, missing


@pytest.mark.slow
def test_the_text_train_eval_and_predict_examples_run(tmp_path, monkeypatch):
    """The README's text commands with data/tickets.csv, CKPT, data/labelled.jsonl and data/new.txt
    made real (one epoch)."""
    pytest.importorskip("tokenizers", reason="data=text needs the text extra")
    (train,) = [c for c in readme_commands("train.py") if "data=text" in c]
    data = tmp_path / "data"
    data.mkdir()
    counts = {"billing": 40, "login": 16, "refund": 8}
    write_texts(data / "tickets.csv", counts)
    write_texts(data / "labelled.jsonl", counts, seed=1)
    write_texts(data / "new.txt", {"billing": 3, "login": 2}, seed=2)
    # the README's file has columns body and team; the test's writer names them text and label
    frame = pd.read_csv(data / "tickets.csv").rename(columns={"text": "body", "label": "team"})
    frame.to_csv(data / "tickets.csv", index=False)
    labelled = pd.read_json(data / "labelled.jsonl", lines=True).rename(
        columns={"text": "body", "label": "team"}
    )
    labelled.to_json(data / "labelled.jsonl", orient="records", lines=True)
    monkeypatch.chdir(tmp_path)  # the commands' relative paths
    run = tmp_path / "run"
    quiet = ["trainer.max_epochs=1", "callbacks.progress_bar.refresh_rate=0"]
    assert run_app("train.py", *train, *quiet, run_dir=run, monkeypatch=monkeypatch) == 0
    checkpoint = str(run / "checkpoints" / "last.ckpt")

    def made_real(command: list[str]) -> list[str]:
        return [word.replace("CKPT", checkpoint) for word in command]

    quiet = ["+trainer.enable_progress_bar=false"]
    (command,) = [c for c in readme_commands("eval.py") if "data.test_path=data/labelled.jsonl" in c]
    out = tmp_path / "eval"
    assert run_app("eval.py", *made_real(command), *quiet, run_dir=out, monkeypatch=monkeypatch) == 0
    assert read_json(out / "metrics.json")["test/num_samples"] == sum(counts.values())
    (command,) = [c for c in readme_commands("predict.py") if "data.path=data/new.txt" in c]
    out = tmp_path / "predict"
    assert run_app("predict.py", *made_real(command), *quiet, run_dir=out, monkeypatch=monkeypatch) == 0
    assert len(pd.read_csv(out / "predictions.csv")) == 5  # one row per line
