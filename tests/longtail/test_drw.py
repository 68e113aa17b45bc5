"""Deferred re-weighting: uniform weights before the switch epoch, the strategy's from it on."""

import lightning as L
import pytest
import torch

from imbalanced.classifier import ImbalancedClassifier
from imbalanced.from_config import build_datamodule, build_model
from imbalanced.longtail.drw import DeferredReweighting


class WeightRecorder(L.Callback):
    def __init__(self) -> None:
        self.seen: dict[int, torch.Tensor] = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.seen.setdefault(trainer.current_epoch, pl_module.class_weights.clone())


def _fit(cfg, callbacks, tmp_path, max_epochs, ckpt_path=None):
    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")
    model = build_model(cfg, datamodule)
    trainer = L.Trainer(
        max_epochs=max_epochs,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=1,
        default_root_dir=tmp_path,
        callbacks=callbacks,
    )
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    return trainer, model, torch.as_tensor(datamodule.class_weights, dtype=torch.float32)


@pytest.mark.slow
def test_drw_switches_from_uniform_to_strategy_weights(compose_cfg, tmp_path):
    cfg = compose_cfg("data=digits", "class_weights=effective_number", "data.batch_size=256")
    recorder = WeightRecorder()
    trainer, model, strategy = _fit(cfg, [DeferredReweighting(1), recorder], tmp_path, max_epochs=3)
    assert not torch.allclose(strategy, torch.ones_like(strategy))
    torch.testing.assert_close(recorder.seen[0], torch.ones_like(strategy))
    for epoch in (1, 2):
        torch.testing.assert_close(recorder.seen[epoch], strategy)
    torch.testing.assert_close(model.class_weights, strategy)  # the strategy's weights survive

    # a checkpoint saved before the switch loads alone and resumes with the same schedule
    path = tmp_path / "before_switch.ckpt"
    trainer.save_checkpoint(path)
    loaded = ImbalancedClassifier.load_from_checkpoint(path)
    assert torch.equal(loaded.class_counts, model.class_counts)
    ckpt = torch.load(path, weights_only=False)
    ckpt["state_dict"]["class_weights"] = torch.ones_like(strategy)  # as if saved in epoch 0
    ckpt["loops"] = None  # restart the epoch counter; the callback state is restored
    torch.save(ckpt, path)
    resumed = WeightRecorder()
    _fit(cfg, [DeferredReweighting(1), resumed], tmp_path, max_epochs=2, ckpt_path=path)
    torch.testing.assert_close(resumed.seen[0], torch.ones_like(strategy))
    torch.testing.assert_close(resumed.seen[1], strategy)  # from the callback state, not the buffer


def test_drw_rejects_bad_epoch():
    with pytest.raises(ValueError, match="drw_start_epoch"):
        DeferredReweighting(-1)


def test_drw_state_round_trip():
    callback = DeferredReweighting(3)
    callback.strategy_weights = torch.tensor([0.5, 2.0])
    other = DeferredReweighting(3)
    other.load_state_dict(callback.state_dict())
    torch.testing.assert_close(other.strategy_weights, callback.strategy_weights)
    torch.testing.assert_close(other.weights_for_epoch(2, other.strategy_weights), torch.ones(2))
    torch.testing.assert_close(other.weights_for_epoch(3, other.strategy_weights), torch.tensor([0.5, 2.0]))
