"""A full disk keeps the previous file and is one `error:` line: checkpoints (written beside their
target, never through the system temp folder) and predictions alike (runs/atomic_writes.py,
runs/checkpoint_io.py)."""

from __future__ import annotations

import errno
import os
import tempfile

import pandas as pd
import pytest
import torch
from inprocess import run_app
from tiny_run import feature_table

from imbalanced.errors import UserError
from imbalanced.runs import atomic_writes as atomic

QUIET_APP = ["+trainer.enable_progress_bar=false"]


class _FullDisk:
    """`os.fdopen` for the atomic writer whose handles take `room` bytes, then fail with ENOSPC
    (the temporary file keeps what fitted, as on a real full disk)."""

    def __init__(self, room: int = 1000, after: int = 0, only: str = "") -> None:
        self.room, self.after, self.only, self.calls = room, after, only, 0
        self.real = os.fdopen

    def __call__(self, descriptor, *args, **kwargs):
        handle = self.real(descriptor, *args, **kwargs)
        if self.only and self.only not in os.readlink(f"/proc/self/fd/{descriptor}"):
            return handle
        self.calls += 1
        if self.calls <= self.after:
            return handle
        write, room = handle.write, [self.room]

        def limited(data):
            size = len(data)
            if size > room[0]:
                write(data[: room[0]])
                room[0] = 0
                raise OSError(errno.ENOSPC, "No space left on device")
            room[0] -= size
            return write(data)

        handle.write = limited
        return handle


def _trainer(compose_cfg, tmp_path):
    from hydra.utils import instantiate

    cfg = compose_cfg(f"trainer.default_root_dir={tmp_path}")
    return instantiate(cfg.trainer, logger=False, enable_progress_bar=False)


def test_checkpoints_are_written_beside_their_target(compose_cfg, tmp_path, monkeypatch):
    trainer = _trainer(compose_cfg, tmp_path)
    folders = []
    real_mkstemp = tempfile.mkstemp
    monkeypatch.setattr(
        tempfile, "mkstemp", lambda *a, **k: (folders.append(str(k.get("dir"))), real_mkstemp(*a, **k))[1]
    )
    path = tmp_path / "checkpoints" / "last.ckpt"
    writer = trainer.strategy.checkpoint_io
    writer.save_checkpoint({"state_dict": {"w": torch.ones(3)}}, path)
    writer.finish_writes()  # the end of each fit waits for them
    assert folders == [str(path.parent)]  # not the system temp folder: the rename stays on one disk
    assert torch.load(path, weights_only=True)["state_dict"]["w"].tolist() == [1.0, 1.0, 1.0]


def test_a_full_disk_keeps_the_previous_checkpoint_loadable(compose_cfg, tmp_path, monkeypatch):
    trainer = _trainer(compose_cfg, tmp_path)
    path = tmp_path / "checkpoints" / "last.ckpt"
    writer = trainer.strategy.checkpoint_io
    writer.save_checkpoint({"state_dict": {"w": torch.ones(3)}, "epoch": 1}, path)
    writer.finish_writes()
    monkeypatch.setattr(atomic.os, "fdopen", _FullDisk(room=100))
    writer.save_checkpoint({"state_dict": {"w": torch.zeros(100_000)}, "epoch": 2}, path)
    with pytest.raises(UserError) as error:  # the write is done in the background: raised by the wait
        writer.finish_writes()
    assert str(error.value) == (
        f"cannot write {path}: No space left on device (the previous file is "
        "kept); free disk space or choose a writable place, then run again"
    )
    assert torch.load(path, weights_only=True)["epoch"] == 1
    assert os.listdir(path.parent) == ["last.ckpt"]  # no temporary file left behind


@pytest.mark.slow
def test_a_full_disk_during_training_is_one_line_and_keeps_last_ckpt(tmp_path, monkeypatch, capsys):
    # the third checkpoint file fails (epoch 2's): last.ckpt stays epoch 1's
    monkeypatch.setattr(atomic.os, "fdopen", _FullDisk(room=1000, after=2, only=".ckpt"))
    run = tmp_path / "run"
    code = run_app(
        "train.py",
        "data.n_samples=300",
        "trainer.max_epochs=3",
        "callbacks.progress_bar.refresh_rate=0",
        run_dir=run,
        monkeypatch=monkeypatch,
    )
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(lines) == 1 and "No space left on device" in lines[0], err
    assert "Traceback" not in err
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 1


def test_a_full_disk_while_writing_predictions_keeps_the_old_file(
    real_checkpoint, tmp_path, monkeypatch, capsys
):
    table = feature_table(tmp_path / "rows.csv", rows=50)
    output = tmp_path / "predictions.csv"
    output.write_text("the previous predictions\n")
    monkeypatch.setattr(atomic.os, "fdopen", _FullDisk(room=100))
    code = run_app(
        "predict.py",
        f"ckpt_path={real_checkpoint}",
        f"data.path={table}",
        f"output_path={output}",
        *QUIET_APP,
        run_dir=tmp_path / "run",
        monkeypatch=monkeypatch,
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("error:") == 1 and f"error: cannot write {output}: No space left" in err
    assert "Traceback" not in err
    assert output.read_text() == "the previous predictions\n"
    assert sorted(os.listdir(tmp_path)) == sorted(["predictions.csv", "rows.csv", "run"])
    assert pd.read_csv(table).shape == (50, 20)
