"""SIGINT / SIGTERM stop a run promptly in every stage; tiny image folders finish quickly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from image_trees import image_tree
from lightning.pytorch.callbacks import Callback

from conftest import FAST, ROOT, read_json
from imbalanced.errors import TrainingInterrupted
from imbalanced.runs.safeguards import stop_on_signals

QUIET = [*FAST, "callbacks.progress_bar.refresh_rate=0"]


class SignalAt(Callback):
    """Test helper: sends `signum` to this process at the start of a validation or test batch."""

    waited = False  # set only when the signal waited for the end of the "long" stage

    def __init__(self, stage: str, signum: int, epoch: int = 0) -> None:
        self.stage, self.signum, self.epoch = stage, signum, epoch
        SignalAt.waited = False

    def _maybe(self, trainer) -> None:
        if trainer.current_epoch == self.epoch and not trainer.sanity_checking:
            os.kill(os.getpid(), self.signum)
            time.sleep(30)  # a long validation or test: the signal must not wait for its end
            SignalAt.waited = True

    def on_validation_batch_start(self, trainer, *args) -> None:
        if self.stage == "validate" and trainer.training is False and trainer.state.fn == "fit":
            self._maybe(trainer)

    def on_test_batch_start(self, trainer, *args) -> None:
        if self.stage == "test":
            self._maybe(trainer)


class SlowValidation(Callback):
    """Test helper: the second epoch's validation writes `marker` and then takes a minute."""

    def __init__(self, marker: str) -> None:
        self.marker = Path(marker)

    def on_validation_batch_start(self, trainer, *args) -> None:
        if trainer.current_epoch == 1 and not trainer.sanity_checking:
            self.marker.write_text("validating")
            time.sleep(60)
            self.marker.write_text("validated")  # only when the signal waited for the validation


def _with(name: str, target: str, **settings) -> list[str]:
    node = f"+callbacks.{name}"
    return [f"{node}._target_={target}"] + [f"{node}.{key}={value}" for key, value in settings.items()]


def test_sigint_during_validation_stops_at_once_and_names_the_last_checkpoint(compose_cfg, tmp_path):
    from imbalanced.tasks.train import train

    cfg = compose_cfg(
        *QUIET,
        "trainer.max_epochs=3",
        f"paths.output_dir={tmp_path}",
        *_with("kill", "test_interrupts.SignalAt", stage="validate", signum=int(signal.SIGINT), epoch=1),
    )
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(TrainingInterrupted, match="SIGINT during the validation of epoch 1") as stop:
        train(cfg)
    assert not SignalAt.waited  # stopped inside the 30 s "validation", not after it
    assert stop.value.exit_code == 130
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert f"resume with: python train.py ckpt_path={last}" in str(stop.value)
    assert torch.load(last, map_location="cpu", weights_only=True)["epoch"] == 0  # loadable, epoch 0's
    assert signal.getsignal(signal.SIGINT) is before  # handlers given back


def test_sigterm_during_the_test_stops_at_once(compose_cfg, tmp_path):
    from imbalanced.tasks.train import train

    cfg = compose_cfg(
        *QUIET,
        f"paths.output_dir={tmp_path}",
        *_with("kill", "test_interrupts.SignalAt", stage="test", signum=int(signal.SIGTERM), epoch=2),
    )
    before = signal.getsignal(signal.SIGTERM)
    with stop_on_signals(), pytest.raises(TrainingInterrupted, match="stopped by SIGTERM") as stop:
        train(cfg)
    assert not SignalAt.waited  # stopped inside the 30 s "test", not after it
    assert stop.value.exit_code == 143
    assert not (tmp_path / "metrics.json").exists()
    torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_finished_training_leaves_no_handler_of_its_own(compose_cfg, tmp_path):
    from imbalanced.tasks.train import train

    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    train(compose_cfg(*QUIET, "trainer.max_epochs=1", f"paths.output_dir={tmp_path}"))
    assert {s: signal.getsignal(s) for s in before} == before


def test_a_signal_outside_trainer_stops_at_once():
    with stop_on_signals(), pytest.raises(TrainingInterrupted, match="stopped by SIGTERM") as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)  # e.g. computing the normalization statistics of a large image folder
    assert stop.value.exit_code == 143


def test_the_calibration_fit_runs_on_one_thread(monkeypatch):
    # L-BFGS's many tiny operations on busy cores waited seconds per validation for the thread pool
    from imbalanced.longtail import calibration

    seen: list[int] = []
    log_softmax = torch.log_softmax  # each evaluation of the fit's likelihood calls it
    monkeypatch.setattr(
        calibration.torch,
        "log_softmax",
        lambda *a, **k: seen.append(torch.get_num_threads()) or log_softmax(*a, **k),
    )
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        calibration.fit_prior_and_temperature(torch.randn(11, 10), torch.arange(11) % 10, None, "auto")
        assert seen and set(seen) == {1}
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def _tiny_folder(tmp_path: Path) -> list[str]:
    root = image_tree(tmp_path / "images", {f"c{i}": 4 for i in range(10)})
    return [
        "data=image_folder",
        f"data.root={root}",
        "data.val_fraction=0.26",
        "data.test_fraction=0.26",
        "callbacks.progress_bar.refresh_rate=0",
        "refit_with_validation=false",  # one training is what these tests interrupt
    ]


def _popen(*overrides: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(str(p) for p in (ROOT / "src", ROOT / "tests", Path(__file__).parent)),
        "HYDRA_FULL_ERROR": "0",
    }
    return subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *overrides],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_a_tiny_image_folder_trains_without_stalling(tmp_path):
    # 10 classes x 4 images, a quarter each for validation and test: one-step epochs, each with a
    # validation and its calibration fit (seconds each on busy cores before it ran on one thread)
    process = _popen(*_tiny_folder(tmp_path), "trainer.max_epochs=20", f"hydra.run.dir={tmp_path / 'run'}")
    _, stderr = process.communicate(timeout=180)
    assert process.returncode == 0, stderr[-3000:]
    assert "test/balanced_accuracy" in read_json(tmp_path / "run" / "metrics.json")


@pytest.mark.slow
def test_an_external_sigterm_during_validation_ends_the_process_within_seconds(tmp_path):
    marker = tmp_path / "validating"
    process = _popen(
        *_tiny_folder(tmp_path),
        "trainer.max_epochs=5",
        f"hydra.run.dir={tmp_path / 'run'}",
        *_with("slow", "test_interrupts.SlowValidation", marker=str(marker)),
    )
    deadline = time.monotonic() + 180
    while not marker.exists():
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert marker.read_text() == "validating", "the process waited for the validation to end"
    assert process.returncode == 143, stderr[-3000:]
    lines = [line for line in stderr.splitlines() if line.startswith("interrupted: ")]
    assert len(lines) == 1 and "SIGTERM during the validation of epoch 1" in lines[0], stderr[-3000:]
    assert "Traceback" not in stderr
    torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
