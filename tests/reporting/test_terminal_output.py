"""What a user sees: `python train.py data=synthetic` prints no framework warning and no line twice,
announces the refit up front, and train.log / eval.py show the per-class table and test summary."""

from __future__ import annotations

import re

import pytest

from conftest import run_cli
from imbalanced.callbacks.progress import epoch_description

LOG_LINE = re.compile(r"\[\d{4}-\d\d-\d\d [\d:,]+\]\[([\w.]+)\]\[(\w+)\] - (.*)")
TABLE_TITLE = "per-class test results (most to least frequent in training)"


def terminal_lines(output: str) -> list[str]:
    """The lines a terminal would keep: a carriage return redraws its line (the progress bars)."""
    return [line.rsplit("\r", 1)[-1].rstrip() for line in output.split("\n")]


def test_epoch_description_counts_from_one_of_the_total():
    assert epoch_description("Epoch", 0, 28) == "Epoch 1/28"
    assert epoch_description("Refit epoch", 27, 28) == "Refit epoch 28/28"
    assert epoch_description("Epoch", 4, -1) == "Epoch 5"  # bounded by steps: no total


@pytest.mark.slow
def test_a_default_run_is_quiet_and_says_what_it_does(tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli(
        "train.py", "data=synthetic", "trainer.max_epochs=2", "data.n_samples=3000", run_dir=run_dir
    )
    assert result.returncode == 0, result.stderr[-2000:]
    output = result.stdout + result.stderr
    for noise in ("Warning", "warn", "deprecated", "GPU available", "TPU available", "weights_only"):
        assert noise not in output, noise
    messages = []
    for line in terminal_lines(output):
        found = LOG_LINE.search(line)
        if found:
            assert found.start() == 0, f"a log line inside a progress bar: {line!r}"
            messages.append(found.group(1) + " " + found.group(3))
    duplicated = sorted({m for m in messages if messages.count(m) > 1})
    assert not duplicated
    plan = [m for m in messages if m.startswith("imbalanced.runs.budget ")]
    assert len(plan) == 1 and "2 epochs x" in plan[0] and "then a refit" in plan[0]
    assert "Refit epoch 2/2: 100%" in result.stdout  # the progress bar tells the two trainings apart
    weights = next(m for m in messages if "class_weights [" in m)
    assert re.search(r"class_weights \[(\d+\.\d{1,4}, ){4}\d+\.\d{1,4}\]$", weights), weights

    log = (run_dir / "train.log").read_text()
    table = result.stdout[result.stdout.index(TABLE_TITLE) :].split("\n\n")[0]
    assert "test: balanced accuracy" in table and table in log

    evaluated = run_cli(
        "eval.py",
        f"ckpt_path={run_dir / 'checkpoints' / 'refit.ckpt'}",
        "+trainer.enable_progress_bar=false",
        run_dir=tmp_path / "eval",
    )
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert table in evaluated.stdout  # the same model on the same test split: the same table
    assert table in (tmp_path / "eval" / "eval.log").read_text()
    assert "Warning" not in evaluated.stdout + evaluated.stderr
