"""What the checkpoint callback writes: `last.ckpt` every epoch, each training moment serialized
once (an epoch that improves the best gives `last.ckpt` as a hard link to the best file)."""

from __future__ import annotations

import os
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from lightning.pytorch.strategies import Strategy
from torch.utils.data import DataLoader, TensorDataset


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


@pytest.fixture
def fit(compose_cfg):
    """Fit `_Scored` with the run's checkpoint callback and checkpoint writer, as configs/callbacks/
    default.yaml and configs/trainer/default.yaml set them."""
    cfg = compose_cfg()
    settings = cfg.callbacks.model_checkpoint

    def _fit(folder: Path, scores: list[float], epochs: int, **fit: object) -> L.Trainer:
        trainer = L.Trainer(
            max_epochs=epochs,
            callbacks=[instantiate(settings, dirpath=str(folder)), *fit.pop("callbacks", [])],
            plugins=instantiate(cfg.trainer.plugins),
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
        )
        trainer.fit(_Scored(scores), _loader(), _loader(), **fit)
        return trainer

    return _fit


@pytest.fixture
def writes(monkeypatch):
    """(file name, checkpoint epoch) of every checkpoint serialized, in order."""
    written: list[tuple[str, int]] = []
    save = Strategy.save_checkpoint

    def recording(self, checkpoint, filepath, storage_options=None):
        written.append((Path(filepath).name, checkpoint["epoch"]))
        save(self, checkpoint, filepath, storage_options)

    monkeypatch.setattr(Strategy, "save_checkpoint", recording)
    return written


def _epoch(path: Path) -> int:
    return torch.load(path, map_location="cpu", weights_only=True)["epoch"]


def test_an_improving_epoch_serializes_once_and_links_last_to_the_best(tmp_path, writes, fit):
    fit(tmp_path, [0.1, 0.2, 0.3, 0.4], epochs=4)
    assert writes == [(f"best-epoch{e:03d}.ckpt", e) for e in range(4)]
    assert sorted(p.name for p in tmp_path.glob("*")) == ["best-epoch003.ckpt", "last.ckpt"]
    best, last = tmp_path / "best-epoch003.ckpt", tmp_path / "last.ckpt"
    assert os.path.samefile(best, last) and not last.is_symlink()
    assert _epoch(last) == 3


def test_other_epochs_write_last_alone_and_leave_the_best_file_as_it_was(tmp_path, writes, fit):
    fit(tmp_path, [0.1, 0.5, 0.3, 0.2], epochs=4)  # best at epoch 1
    assert writes == [
        ("best-epoch000.ckpt", 0),
        ("best-epoch001.ckpt", 1),
        ("last.ckpt", 2),
        ("last.ckpt", 3),
    ]
    best, last = tmp_path / "best-epoch001.ckpt", tmp_path / "last.ckpt"
    assert sorted(p.name for p in tmp_path.glob("*")) == [best.name, last.name]  # no temporary file left
    assert not os.path.samefile(best, last)
    assert (_epoch(best), _epoch(last)) == (1, 3)


def test_without_hard_links_last_is_a_copy_of_the_best(tmp_path, writes, fit, monkeypatch):
    def refuse(*_):
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", refuse)
    fit(tmp_path, [0.1, 0.2], epochs=2)
    assert writes == [(f"best-epoch{e:03d}.ckpt", e) for e in range(2)]
    best, last = tmp_path / "best-epoch001.ckpt", tmp_path / "last.ckpt"
    assert not os.path.samefile(best, last) and best.read_bytes() == last.read_bytes()
    assert sorted(p.name for p in tmp_path.glob("*")) == [best.name, last.name]
    assert _epoch(last) == 1


def test_resuming_from_a_linked_last_checkpoint_reaches_the_uninterrupted_model(tmp_path, fit):
    scores = [0.1, 0.2, 0.3, 0.4]
    whole = fit(tmp_path / "whole", scores, epochs=4)
    with pytest.raises(RuntimeError):
        fit(tmp_path / "cut", scores, epochs=4, callbacks=[_FailAt(3)])
    cut = tmp_path / "cut"
    assert os.path.samefile(cut / "last.ckpt", cut / "best-epoch002.ckpt")
    resumed = fit(cut, scores, epochs=4, ckpt_path=str(cut / "last.ckpt"))
    assert torch.equal(resumed.lightning_module.layer.weight, whole.lightning_module.layer.weight)
    assert float(resumed.checkpoint_callback.best_model_score) == pytest.approx(0.4)
    # the resumed run's new best replaced the file last.ckpt was linked to; last.ckpt is epoch 3's
    assert sorted(p.name for p in cut.glob("*.ckpt")) == ["best-epoch003.ckpt", "last.ckpt"]
    assert _epoch(cut / "last.ckpt") == 3


def test_a_checkpoint_holds_the_weights_of_its_save_not_of_its_write(compose_cfg, tmp_path):
    # the file is written while the next epoch trains: what it holds is serialized at the save
    writer = instantiate(compose_cfg().trainer.plugins)[0]
    weights = torch.ones(3)
    writer.save_checkpoint({"state_dict": {"w": weights}}, tmp_path / "last.ckpt")
    weights.zero_()  # the optimizer's next step
    writer.finish_writes()
    assert torch.load(tmp_path / "last.ckpt", weights_only=True)["state_dict"]["w"].tolist() == [1.0] * 3
