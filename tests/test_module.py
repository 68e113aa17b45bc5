import lightning as L
import pytest
import torch

from imbalanced.classifier import ImbalancedClassifier
from imbalanced.data.synthetic import SyntheticDataModule
from imbalanced.errors import UserError

BACKBONE = {"_target_": "imbalanced.models.MLP", "hidden_sizes": [32]}


def make_model(**kwargs):
    return ImbalancedClassifier(num_classes=4, num_features=6, backbone=BACKBONE, **kwargs)


def test_buffers_exist_at_init_with_final_shapes():
    model = make_model()
    buffers = dict(model.named_buffers())
    assert buffers["class_weights"].shape == (4,) and buffers["class_counts"].shape == (4,)
    assert buffers["feature_mean"].shape == (6,) and buffers["feature_scale"].shape == (6,)


def test_fit_copies_training_statistics_and_checkpoint_round_trips(tmp_path):
    datamodule = SyntheticDataModule(
        n_samples=1200, n_features=6, num_classes=4, imbalance_ratio=10, batch_size=64,
        class_weights={"strategy": "balanced"},
    )
    datamodule.setup("fit")
    model = make_model(class_names=datamodule.class_names)
    trainer = L.Trainer(
        max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, use_distributed_sampler=False,
    )
    trainer.fit(model, datamodule=datamodule)
    torch.testing.assert_close(model.class_weights, torch.tensor(datamodule.class_weights).float())
    torch.testing.assert_close(model.class_counts, torch.tensor(datamodule.class_counts).float())
    torch.testing.assert_close(model.feature_mean, torch.tensor(datamodule.feature_mean).float())

    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    loaded = ImbalancedClassifier.load_from_checkpoint(path)  # no datamodule needed
    x = torch.as_tensor(datamodule.splits.x_test)
    model.eval()
    loaded.eval()
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    assert torch.equal(loaded.class_weights, model.class_weights)
    assert loaded.class_names == datamodule.class_names


def test_data_with_other_class_count_is_rejected():
    datamodule = SyntheticDataModule(n_samples=1200, n_features=6, num_classes=3)
    datamodule.setup("fit")
    with pytest.raises(UserError, match="class_weights of shape"):
        make_model().load_data_statistics(datamodule)
