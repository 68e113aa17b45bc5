"""A run's files get the user's umask (0644 under 0022), and no lock file stays in a run directory."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from inprocess import run_app
from tiny_run import feature_table

from imbalanced.runs import run_dir
from imbalanced.runs.atomic_writes import copy_verified, write_text_atomic


@pytest.fixture
def umask():
    """Set the process umask for one test, then restore it."""
    previous = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_writes_and_copies_follow_the_umask(umask, tmp_path, mask, expected):
    umask(mask)
    written = write_text_atomic(tmp_path / "metrics.json", "{}\n")
    copied = copy_verified(written, tmp_path / "copy.json")
    assert (_mode(written), _mode(copied)) == (expected, expected)


@pytest.mark.slow  # two real runs
def test_a_run_and_a_predict_write_0644_files_and_leave_no_lock(umask, tmp_path, monkeypatch):
    umask(0o022)
    train_dir, predict_dir = tmp_path / "train", tmp_path / "predict"
    code = run_app(
        "train.py",
        "data.n_samples=300",
        "trainer.max_epochs=1",
        "callbacks.progress_bar.refresh_rate=0",
        run_dir=train_dir,
        monkeypatch=monkeypatch,
    )
    assert code == 0
    table = feature_table(tmp_path / "rows.csv")
    code = run_app(
        "predict.py",
        f"ckpt_path={train_dir / 'checkpoints' / 'last.ckpt'}",
        f"data.path={table}",
        "+trainer.enable_progress_bar=false",
        run_dir=predict_dir,
        monkeypatch=monkeypatch,
    )
    assert code == 0
    for directory in (train_dir, predict_dir):
        files = [p for p in directory.rglob("*") if p.is_file()]
        assert not [p.name for p in files if p.name == run_dir.LOCK_FILE]
        modes = {str(p.relative_to(directory)): oct(_mode(p)) for p in files}
        assert set(modes.values()) == {"0o644"}, modes
    names = {p.name for p in train_dir.rglob("*")}
    assert {"metrics.json", "class_weights.json", "last.ckpt"} <= names
    assert any(name.endswith(".png") for name in names)
    assert (predict_dir / "predictions.csv").is_file()


def test_the_lock_is_removed_when_released_and_refused_while_held(tmp_path):
    directory = tmp_path / "run"
    run_dir.acquire_lock(directory)
    assert (directory / run_dir.LOCK_FILE).read_text().strip() == str(os.getpid())
    run_dir.release_locks()
    assert not (directory / run_dir.LOCK_FILE).exists()
    run_dir.acquire_lock(directory)  # free again
    run_dir.release_locks()


def test_a_lock_file_removed_by_its_previous_holder_is_not_taken(tmp_path, monkeypatch):
    """Between a newcomer's open and its flock the holder may remove the file: locking the removed
    file would let a third process lock a new one at the same time. The newcomer opens again."""
    directory = tmp_path / "run"
    directory.mkdir()
    opened = []
    real_open = open

    def open_then_holder_removes(path, *args, **kwargs):
        handle = real_open(path, *args, **kwargs)
        opened.append(path)
        if len(opened) == 1:
            os.unlink(path)  # the previous holder ends its run now
        return handle

    monkeypatch.setattr("builtins.open", open_then_holder_removes)
    run_dir.acquire_lock(directory)
    monkeypatch.undo()
    try:
        assert len(opened) == 2 and (directory / run_dir.LOCK_FILE).exists()
        assert run_dir._is_current(run_dir._held[directory], directory / run_dir.LOCK_FILE)
    finally:
        run_dir.release_locks()
