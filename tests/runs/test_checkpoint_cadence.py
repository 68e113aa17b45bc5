"""When the checkpoint callback writes: every epoch with `min_seconds_between_writes=0`; otherwise
the first and the last epoch of a fit (and every interval), a new best held in memory till then."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.strategies import Strategy
from torch.utils.data import DataLoader, TensorDataset

from imbalanced.callbacks.checkpoints import EveryEpochLastCheckpoint


class _Scored(L.LightningModule):
    """Deterministic training (no shuffling, no dropout); the validation score is `scores[epoch]`."""

    def __init__(self, scores: list[float]) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.layer = torch.nn.Linear(2, 1)
        self.scores = scores

    def training_step(self, batch, _):
        return (self.layer(batch[0]) - 1.0).pow(2).mean()

    def validation_step(self, batch, _):
        self.log("val/balanced_accuracy", self.scores[self.current_epoch])

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=0.1)


class _FailAt(L.Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            raise RuntimeError("stopped by the test")


def _loader() -> DataLoader:
    generator = torch.Generator().manual_seed(0)
    return DataLoader(TensorDataset(torch.randn(8, 2, generator=generator)), batch_size=4)


def _fit(folder: Path, seconds: float, scores: list[float], epochs: int, **fit: object) -> L.Trainer:
    callback = EveryEpochLastCheckpoint(
        dirpath=folder,
        filename="best-epoch{epoch:03d}",
        auto_insert_metric_name=False,
        monitor="val/balanced_accuracy",
        mode="max",
        save_top_k=1,
        save_last=True,
        min_seconds_between_writes=seconds,
    )
    trainer = L.Trainer(
        max_epochs=epochs,
        callbacks=[callback, *fit.pop("callbacks", [])],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(_Scored(scores), _loader(), _loader(), **fit)
    return trainer


@pytest.fixture
def writes(monkeypatch):
    """(file name, checkpoint epoch) of every checkpoint written, in order."""
    written: list[tuple[str, int]] = []
    save = Strategy.save_checkpoint

    def recording(self, checkpoint, filepath, storage_options=None):
        written.append((Path(filepath).name, checkpoint["epoch"]))
        save(self, checkpoint, filepath, storage_options)

    monkeypatch.setattr(Strategy, "save_checkpoint", recording)
    return written


def _epoch(path: Path) -> int:
    return torch.load(path, map_location="cpu", weights_only=True)["epoch"]


def test_interval_zero_writes_every_epoch(tmp_path, writes):
    _fit(tmp_path, 0, [0.1, 0.2, 0.3, 0.4], epochs=4)
    assert writes == [item for e in range(4) for item in ((f"best-epoch{e:03d}.ckpt", e), ("last.ckpt", e))]
    assert sorted(p.name for p in tmp_path.glob("*.ckpt")) == ["best-epoch003.ckpt", "last.ckpt"]


def test_a_long_interval_writes_the_first_and_last_epoch_only(tmp_path, writes):
    trainer = _fit(tmp_path, 1e9, [0.1, 0.2, 0.3, 0.4], epochs=4)
    # the bests of epochs 1 and 2 were held in memory and superseded before they were written
    assert writes == [
        ("best-epoch000.ckpt", 0),
        ("last.ckpt", 0),
        ("best-epoch003.ckpt", 3),
        ("last.ckpt", 3),
    ]
    assert sorted(p.name for p in tmp_path.glob("*.ckpt")) == ["best-epoch003.ckpt", "last.ckpt"]
    assert trainer.checkpoint_callback.best_model_path == str(tmp_path / "best-epoch003.ckpt")


def test_a_held_best_is_written_at_the_end_and_the_old_one_removed(tmp_path, writes):
    _fit(tmp_path, 1e9, [0.1, 0.5, 0.3, 0.2], epochs=4)  # best at epoch 1, held until the fit ends
    assert writes == [
        ("best-epoch000.ckpt", 0),
        ("last.ckpt", 0),
        ("best-epoch001.ckpt", 1),
        ("last.ckpt", 3),
    ]
    assert sorted(p.name for p in tmp_path.glob("*.ckpt")) == ["best-epoch001.ckpt", "last.ckpt"]
    assert (_epoch(tmp_path / "best-epoch001.ckpt"), _epoch(tmp_path / "last.ckpt")) == (1, 3)


def test_an_error_writes_the_held_best(tmp_path, writes):
    with pytest.raises(RuntimeError, match="stopped by the test"):
        _fit(tmp_path, 1e9, [0.1, 0.2, 0.3, 0.4], epochs=4, callbacks=[_FailAt(3)])
    # the held best of epoch 2 is written (interrupted.ckpt would name it); last.ckpt stays epoch 0's
    # and the best it names is kept
    names = ["best-epoch000.ckpt", "best-epoch002.ckpt", "last.ckpt"]
    assert sorted(p.name for p in tmp_path.glob("*.ckpt")) == names
    assert [_epoch(tmp_path / name) for name in names] == [0, 2, 0]


def test_resuming_from_an_older_last_checkpoint_reaches_the_uninterrupted_model(tmp_path):
    scores = [0.1, 0.2, 0.3, 0.4]
    whole = _fit(tmp_path / "whole", 1e9, scores, epochs=4)
    with pytest.raises(RuntimeError):
        _fit(tmp_path / "cut", 1e9, scores, epochs=4, callbacks=[_FailAt(3)])
    resumed = _fit(tmp_path / "cut", 1e9, scores, epochs=4, ckpt_path=str(tmp_path / "cut" / "last.ckpt"))
    assert torch.equal(resumed.lightning_module.layer.weight, whole.lightning_module.layer.weight)
    assert _epoch(tmp_path / "cut" / "last.ckpt") == 3
    assert float(resumed.checkpoint_callback.best_model_score) == pytest.approx(0.4)
    assert resumed.checkpoint_callback.best_model_path == str(tmp_path / "cut" / "best-epoch003.ckpt")
    assert not (tmp_path / "cut" / "best-epoch000.ckpt").exists()  # replaced as the resumed run improved


def test_the_default_config_writes_every_epoch(compose_cfg):
    # a resume is bit for bit only when both runs write at the same epochs (docs/reference.md)
    assert compose_cfg().callbacks.model_checkpoint.min_seconds_between_writes == 0
