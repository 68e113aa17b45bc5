import lightning as L
import pytest
import torch

from imbalanced.classifier import ImbalancedClassifier
from imbalanced.data.tables.synthetic import SyntheticDataModule
from imbalanced.errors import UserError

BACKBONE = {"_target_": "imbalanced.models.MLP", "hidden_sizes": [32], "in_features": 6}
STANDARDIZE = {"_target_": "imbalanced.data.tables.standardize.Standardize", "num_features": 6}


def make_model(**kwargs):
    return ImbalancedClassifier(num_classes=4, backbone=BACKBONE, input_transform=STANDARDIZE, **kwargs)


def test_buffers_exist_at_init_with_final_shapes():
    model = make_model()
    buffers = dict(model.named_buffers())
    assert buffers["class_weights"].shape == (4,) and buffers["class_counts"].shape == (4,)
    assert buffers["input_transform.mean"].shape == (6,) and buffers["input_transform.scale"].shape == (6,)


def test_the_module_knows_nothing_about_features():
    import inspect

    parameters = inspect.signature(ImbalancedClassifier.__init__).parameters
    assert not [name for name in parameters if "feature" in name]
    model = ImbalancedClassifier(num_classes=3, backbone=BACKBONE)  # no input transform: raw inputs
    assert model.input_transform is None and "data" in model.hparams


def test_fit_copies_training_statistics_and_checkpoint_round_trips(tmp_path):
    datamodule = SyntheticDataModule(
        n_samples=1200,
        n_features=6,
        num_classes=4,
        imbalance_ratio=10,
        batch_size=64,
        class_weights={"strategy": "balanced"},
    )
    datamodule.setup("fit")
    model = make_model(class_names=datamodule.class_names)
    trainer = L.Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
        num_sanity_val_steps=0,  # the prediction policy must be fitted by the epoch's validation itself
    )
    trainer.fit(model, datamodule=datamodule)
    torch.testing.assert_close(model.class_weights, torch.tensor(datamodule.class_weights).float())
    torch.testing.assert_close(model.class_counts, torch.tensor(datamodule.class_counts).float())
    torch.testing.assert_close(model.input_transform.mean, torch.tensor(datamodule.feature_mean).float())
    torch.testing.assert_close(model.input_transform.scale, torch.tensor(datamodule.feature_scale).float())

    path = tmp_path / "model.ckpt"
    assert model.posthoc_tau == 0.0  # off unless train.py sets it
    model.posthoc_tau = 0.5  # train.py sets it; eval.py / predict.py start from the saved value
    trainer.save_checkpoint(path)
    loaded = ImbalancedClassifier.load_from_checkpoint(path)  # no datamodule needed
    assert loaded.posthoc_tau == 0.5
    older = torch.load(path, weights_only=True)  # a checkpoint from before posthoc_tau was saved
    del older["posthoc_tau"]
    torch.save(older, tmp_path / "older.ckpt")
    assert ImbalancedClassifier.load_from_checkpoint(tmp_path / "older.ckpt").posthoc_tau == 0.0
    fitted = model.prediction_policy.state_dict()  # refitted on validation during fit
    assert fitted != ImbalancedClassifier(num_classes=4, backbone=BACKBONE).prediction_policy.state_dict()
    assert loaded.prediction_policy.state_dict() == fitted
    x = torch.as_tensor(datamodule.splits.x_test)  # raw features: the model standardizes them
    model.eval()
    loaded.eval()
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
        mean, scale = (torch.tensor(v).float() for v in (datamodule.feature_mean, datamodule.feature_scale))
        scaled = (x - mean) / scale
        assert torch.equal(loaded(x), loaded.backbone(scaled))
        assert torch.equal(loaded.predict_step(x, 0), model.predict_step(x, 0))  # tau 0.5 applied alike
    assert torch.equal(loaded.class_weights, model.class_weights)
    assert loaded.class_names == datamodule.class_names


def test_data_with_other_class_count_is_rejected():
    datamodule = SyntheticDataModule(n_samples=1200, n_features=6, num_classes=3)
    datamodule.setup("fit")
    with pytest.raises(UserError, match="class_weights of shape"):
        make_model().load_data_contract(datamodule.contract())


def test_statistics_of_a_datamodule_with_or_without_an_input_transform():
    from imbalanced.data.class_statistics import ClassStatistics
    from imbalanced.data.contract import DataContract

    stats = ClassStatistics.from_labels([0, 1, 1, 2, 3, 3, 3], ["a", "b", "c", "d"], {"strategy": "inverse"})
    plain = ImbalancedClassifier(num_classes=4, backbone=BACKBONE)
    plain.load_data_contract(DataContract(stats))  # data with no input transform
    torch.testing.assert_close(plain.class_counts, torch.tensor([1.0, 2.0, 1.0, 3.0]))
    datamodule = SyntheticDataModule(n_samples=600, n_features=6, num_classes=4)
    datamodule.setup("fit")
    refusal = "^the data gives a fitted input transform but the model was built without one$"
    with pytest.raises(UserError, match=refusal):
        plain.load_data_contract(datamodule.contract())
    wider = SyntheticDataModule(n_samples=600, n_features=8, num_classes=4)
    wider.setup("fit")
    shapes = r"^the data gives input_transform.mean of shape \(8,\) but the model was built for \(6,\)"
    with pytest.raises(UserError, match=shapes):
        make_model().load_data_contract(wider.contract())


def test_class_names_default_to_indices_and_must_match_the_class_count(monkeypatch):
    assert ImbalancedClassifier(num_classes=3, backbone=BACKBONE).class_names == ["0", "1", "2"]
    with pytest.raises(UserError, match=r"^2 class names given for 3 classes$"):
        ImbalancedClassifier(num_classes=3, backbone=BACKBONE, class_names=["a", "b"])
    compiled = []
    monkeypatch.setattr(torch.nn.Module, "compile", lambda module, **options: compiled.append(options))
    ImbalancedClassifier(num_classes=3, backbone=BACKBONE)
    assert compiled == []  # model.compile is off unless asked for
    ImbalancedClassifier(num_classes=3, backbone=BACKBONE, compile=True)
    assert len(compiled) == 1
