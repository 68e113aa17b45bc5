"""End-to-end runs on `data.backend=dataloader`: the debug presets, and SIGTERM mid-epoch then resume
(with a worker process) giving exactly the uninterrupted run."""

from __future__ import annotations

import json
import os
import signal

import pytest
from lightning.pytorch.callbacks import Callback

from conftest import read_json

DATALOADER = ["data.backend=dataloader", "data.n_samples=1200", "callbacks.progress_bar.refresh_rate=0"]


class SignalAfterBatch(Callback):
    """Test helper: sends `signum` to this process after batch `batch` of epoch `epoch`."""

    def __init__(self, epoch: int, batch: int, signum: int = signal.SIGTERM) -> None:
        self.epoch, self.batch, self.signum = epoch, batch, signum

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if (trainer.current_epoch, batch_idx) == (self.epoch, self.batch):
            os.kill(os.getpid(), self.signum)


@pytest.mark.parametrize("preset", ["fdr", pytest.param("limit", marks=pytest.mark.slow)])
def test_quick_debug_presets_run_on_the_dataloader_backend(compose_cfg, tmp_path, preset):
    from imbalanced.tasks.train import train

    report = train(compose_cfg(*DATALOADER, f"debug={preset}", f"paths.output_dir={tmp_path}"))
    assert 0.0 <= report["test/balanced_accuracy"] <= 1.0


@pytest.mark.slow
def test_overfit_and_profiler_presets_run_on_the_dataloader_backend(compose_cfg, tmp_path):
    from imbalanced.tasks.train import train

    record = tmp_path / "seen"
    train(
        compose_cfg(
            *DATALOADER,
            "debug=overfit",
            "trainer.max_epochs=3",
            "data.num_workers=1",
            "+callbacks.record._target_=shard_recorder.RecordTrainSamples",
            f"+callbacks.record.path={record}",
            f"paths.output_dir={tmp_path / 'overfit'}",
        )
    )
    epochs = json.loads((record / "seen_rank0.json").read_text())
    assert len(epochs) == 3 and len(epochs[0]) == 3 * 256  # limit_train_batches=3
    assert epochs[0] == epochs[1] == epochs[2]  # FixedTrainBatches: the same batches every epoch

    train(
        compose_cfg(
            *DATALOADER, "debug=profiler", "data.num_workers=1", f"paths.output_dir={tmp_path / 'profiler'}"
        )
    )
    assert "train_dataloader_next" in (tmp_path / "profiler" / "fit-profiler.txt").read_text()


@pytest.mark.slow
def test_sigterm_mid_epoch_then_resume_equals_uninterrupted_on_the_dataloader_backend(compose_cfg, tmp_path):
    from imbalanced.errors import TrainingInterrupted
    from imbalanced.tasks.train import train

    settings = [
        *DATALOADER,
        "data.num_workers=1",
        "trainer.max_epochs=2",
        "trainer.deterministic=true",
        "sampler=sqrt",
    ]
    baseline = train(compose_cfg(*settings, f"paths.output_dir={tmp_path / 'a'}"))
    cfg = compose_cfg(
        *settings,
        f"paths.output_dir={tmp_path / 'b'}",
        "+callbacks.kill._target_=test_dataloader_backend_runs.SignalAfterBatch",
        "+callbacks.kill.epoch=1",
        "+callbacks.kill.batch=1",
    )
    with pytest.raises(TrainingInterrupted, match=r"SIGTERM at epoch 1, batch (1|2);"):
        train(cfg)
    interrupted = tmp_path / "b" / "checkpoints" / "interrupted.ckpt"
    resumed = train(compose_cfg(*settings, f"paths.output_dir={tmp_path / 'b'}", f"ckpt_path={interrupted}"))
    assert resumed == baseline
    assert read_json(tmp_path / "b" / "metrics.json") == read_json(tmp_path / "a" / "metrics.json")
