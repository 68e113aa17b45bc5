"""The measured defaults: the training budget and which checkpoint is saved as `last`/`best`
and tested (the split floor's tests are in test_wiring.py, which mutmut's test selection holds)."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from imbalanced.callbacks.checkpoints import EveryEpochLastCheckpoint
from imbalanced.errors import UserError
from imbalanced.from_config import build_datamodule
from imbalanced.runs.budget import apply_budget, budget_epochs, check_budget, uses_budget
from imbalanced.tasks.train import checkpoint_to_test


# ---- budget -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("steps_per_epoch", "expected"),
    [
        (3, 167),  # a 700-row table at batch 256: ceil(500 / 3)
        (55, 10),  # data=synthetic (14000 training rows): min_epochs
        (1, 200),  # one batch per epoch: capped at max_epochs
        (1000, 10),  # a large table: min_epochs, never fewer
    ],
)
def test_budget_epochs_rule(steps_per_epoch, expected):
    assert budget_epochs(steps_per_epoch, min_steps=500, min_epochs=10, max_epochs=200) == expected


@pytest.mark.parametrize(
    ("steps_per_epoch", "expected"),
    [
        (3, 200),  # 700 training rows at batch 256: the cap (600 steps)
        (13, 116),  # 3,300 rows: 1,500 steps
        (55, 28),  # data=synthetic (14,000 training rows)
        (150, 10),  # 38,400 rows and more: the 10-epoch floor
    ],
)
def test_default_budget_is_the_documented_one(compose_cfg, steps_per_epoch, expected):
    budget = compose_cfg().budget
    assert budget_epochs(steps_per_epoch, budget.min_steps, budget.min_epochs, budget.max_epochs) == expected


def test_budget_bad_settings_fail_before_data(compose_cfg):
    with pytest.raises(UserError, match=r"budget.min_epochs=300 is invalid; allowed: at most"):
        check_budget(compose_cfg("budget.min_epochs=300"))
    with pytest.raises(UserError, match=r"budget.min_steps"):
        check_budget(compose_cfg("budget.min_steps=0"))


def test_explicit_length_wins(compose_cfg):
    assert uses_budget(compose_cfg())
    assert not uses_budget(compose_cfg("trainer.max_epochs=3"))
    assert not uses_budget(compose_cfg("+trainer.max_steps=40"))
    datamodule = build_datamodule(compose_cfg("data.n_samples=2000"))
    datamodule.setup("fit")
    explicit = compose_cfg("data.n_samples=2000", "trainer.max_epochs=3")
    assert apply_budget(explicit, datamodule) is None and explicit.trainer.max_epochs == 3


def test_budget_sets_epochs_from_training_batches(compose_cfg):
    cfg = compose_cfg("data.n_samples=2000", "data.batch_size=100", "budget.min_steps=300")
    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")
    batches = len(datamodule.train_dataloader())
    assert batches == -(-len(datamodule.splits.y_train) // 100)
    assert apply_budget(cfg, datamodule) == -(-300 // batches) == cfg.trainer.max_epochs


# ---- selection: what is saved as last/best, what is tested -----------------------------------------
class _Worsening(L.LightningModule):
    """A model whose validation score falls every epoch: the best checkpoint is epoch 0."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 2)

    def training_step(self, batch, _):
        return self.layer(batch[0]).sum()

    def validation_step(self, batch, _):
        self.log("val/balanced_accuracy", 1.0 - 0.1 * self.current_epoch)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_last_checkpoint_is_the_last_epoch_and_is_tested_by_default(tmp_path, compose_cfg):
    loader = DataLoader(TensorDataset(torch.randn(8, 2)), batch_size=4)
    callback = EveryEpochLastCheckpoint(
        dirpath=tmp_path,
        filename="best-epoch{epoch:03d}",
        auto_insert_metric_name=False,
        monitor="val/balanced_accuracy",
        mode="max",
        save_top_k=1,
        save_last=True,
    )
    trainer = L.Trainer(
        max_epochs=3,
        callbacks=[callback],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(_Worsening(), loader, loader)
    last = torch.load(tmp_path / "last.ckpt", weights_only=True)
    best = torch.load(tmp_path / "best-epoch000.ckpt", weights_only=True)
    assert (last["epoch"], last["global_step"]) == (2, 6)  # Lightning's own class would leave epoch 0 here
    assert best["epoch"] == 0
    assert checkpoint_to_test(compose_cfg(), trainer) == str(tmp_path / "last.ckpt")
    assert checkpoint_to_test(compose_cfg("test_checkpoint=best"), trainer) == "best"


@pytest.mark.slow
def test_train_validates_and_tests_the_last_epoch(tmp_path, compose_cfg):
    """metrics.json's val score is the last epoch's logged one: train() tested last.ckpt."""
    import pandas as pd

    from imbalanced.tasks.train import train

    cfg = compose_cfg(
        "data.n_samples=600",
        "trainer.max_epochs=3",
        "~callbacks.progress_bar",
        f"paths.output_dir={tmp_path}",
    )
    report = train(cfg)
    logged = pd.read_csv(next(tmp_path.rglob("metrics.csv"))).dropna(subset=["val/balanced_accuracy"])
    during_fit = logged[logged["epoch"] == 2]["val/balanced_accuracy"].iloc[0]
    assert report["val/balanced_accuracy"] == pytest.approx(during_fit, abs=1e-6)
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 2
