"""The data-to-model contract: class statistics from labels, inputs of any dtype, resume checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from sklearn.utils.class_weight import compute_class_weight

from imbalanced.classifier import ImbalancedClassifier
from imbalanced.data.class_statistics import ClassStatistics
from imbalanced.data.in_memory import InMemoryDataModule, Splits
from imbalanced.errors import UserError

LABELS = np.array([0] * 30 + [1] * 10 + [2] * 3)
BACKBONE = {"_target_": "imbalanced.models.MLP", "hidden_sizes": [4], "in_features": 5}


def test_statistics_come_from_the_labels_alone_and_write_class_weights_json():
    stats = ClassStatistics.from_labels(LABELS, ["a", "b", "c"], {"strategy": "balanced"})
    assert stats.num_classes == 3 and stats.counts.tolist() == [30, 10, 3]
    expected = compute_class_weight("balanced", classes=np.arange(3), y=LABELS)
    np.testing.assert_allclose(stats.weights, expected)
    settings = {"strategy": "effective_number", "beta": 0.9}
    report = ClassStatistics.from_labels(LABELS, ["a", "b", "c"], settings).report()
    assert list(report) == ["strategy", "settings", "class_names", "counts", "weights"]
    assert report["strategy"] == "effective_number" and report["settings"] == {"beta": 0.9}
    with pytest.raises(ValueError, match="one of each per class"):
        ClassStatistics(["a"], np.array([1, 2]), np.array([1.0, 1.0]))


def test_class_weights_json_lists_a_config_groups_own_settings_only(compose_cfg):
    # the group's YAML reaches the data with Hydra's `_target_`: the report names the strategy and
    # the user's beta, never Hydra's keys
    cfg = compose_cfg("class_weights=effective_number", "class_weights.beta=0.99")
    report = ClassStatistics.from_labels(LABELS, ["a", "b", "c"], cfg.class_weights).report()
    assert report["strategy"] == "effective_number"
    assert report["settings"] == {"beta": 0.99}


def test_module_takes_the_statistics_object():
    stats = ClassStatistics.from_labels(LABELS, ["a", "b", "c"], {"strategy": "inverse"})
    model = ImbalancedClassifier(num_classes=3, backbone=BACKBONE, class_statistics=stats)
    assert model.class_names == ["a", "b", "c"]
    torch.testing.assert_close(model.class_weights, torch.as_tensor(stats.weights, dtype=torch.float32))
    torch.testing.assert_close(model.class_counts, torch.tensor([30.0, 10.0, 3.0]))
    assert "class_statistics" not in model.hparams  # counts and weights travel as buffers


class TokenIds(InMemoryDataModule):
    """Padded token ids (int64, N x 7): the base serves them as they are."""

    def load_splits(self) -> Splits:
        rng = np.random.default_rng(0)
        tokens = rng.integers(0, 50, size=(len(LABELS), 7), dtype=np.int64)
        held_out = (tokens[:6], LABELS[:6])
        return Splits(tokens, LABELS, *held_out, *held_out, class_names=["a", "b", "c"])


def test_in_memory_base_keeps_any_dtype_and_shape():
    datamodule = TokenIds(batch_size=8, class_weights={"strategy": "balanced"})
    datamodule.setup("fit")
    tokens, labels = next(iter(datamodule.train_dataloader()))
    assert tokens.dtype == torch.int64 and tokens.shape == (8, 7) and labels.dtype == torch.int64
    assert datamodule.class_statistics.counts.tolist() == [30, 10, 3]
    assert datamodule.backbone_inputs() == {} and datamodule.input_transform() is None


def _checkpoint(cfg, datamodule):
    from imbalanced.from_config import build_model

    model = build_model(cfg, datamodule)
    model.load_data_contract(datamodule.contract())
    return {
        "state_dict": model.state_dict(),
        "epoch": 1,
        "loops": {},
        "optimizer_states": [],
        "hyper_parameters": dict(model.hparams),
    }


def test_resume_checks_the_completed_backbone_and_the_fitted_input_transform(compose_cfg, tmp_path):
    from imbalanced.from_config import build_datamodule
    from imbalanced.runs.resume import check_resume

    cfg = compose_cfg("data.n_samples=600", "ckpt_path=last.ckpt", f"hydra.run.dir={tmp_path}")
    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")
    checkpoint = _checkpoint(cfg, datamodule)
    assert checkpoint["hyper_parameters"]["backbone"]["in_features"] == 20
    check_resume(cfg, datamodule, checkpoint)  # same data, same settings

    checkpoint["state_dict"]["input_transform.mean"] += 1.0
    with pytest.raises(UserError, match="trained with input_transform.mean="):
        check_resume(cfg, datamodule, checkpoint)

    other = compose_cfg("data.n_samples=600", "data.n_features=8", "ckpt_path=last.ckpt")
    other_data = build_datamodule(other)
    other_data.setup("fit")
    with pytest.raises(
        UserError,
        match=r"^model.backbone=.*in_features.*differs from the checkpoint's .*; "
        r"allowed: the settings of the run being resumed \(see its "
        r"\.hydra/config\.yaml\)$",
    ):
        check_resume(other, other_data, _checkpoint(cfg, datamodule))


def test_resume_names_what_a_file_lacks_and_checks_the_split_without_hyperparameters(compose_cfg, tmp_path):
    from imbalanced.from_config import build_datamodule
    from imbalanced.runs.resume import check_resume

    cfg = compose_cfg("data.n_samples=600", "ckpt_path=old/last.ckpt", f"hydra.run.dir={tmp_path}")
    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")
    checkpoint = _checkpoint(cfg, datamodule)
    for key in ("state_dict", "epoch", "loops", "optimizer_states"):
        partial = {name: value for name, value in checkpoint.items() if name != key}
        with pytest.raises(
            UserError,
            match=rf"^ckpt_path=old/last.ckpt is not a Lightning training "
            rf"checkpoint \(no '{key}'\)$",
        ):
            check_resume(cfg, datamodule, partial)
    # a checkpoint saved without hyperparameters is still held to the same training split
    bare = {name: value for name, value in checkpoint.items() if name != "hyper_parameters"}
    check_resume(cfg, datamodule, bare)
    bare["state_dict"] = {**bare["state_dict"], "class_counts": bare["state_dict"]["class_counts"] + 1}
    with pytest.raises(UserError, match="trained with class_counts="):
        check_resume(cfg, datamodule, bare)


def test_resume_with_other_class_weights_is_refused_naming_both(compose_cfg, tmp_path):
    from types import SimpleNamespace

    from imbalanced.data.contract import DataContract
    from imbalanced.from_config import build_datamodule
    from imbalanced.runs.resume import check_resume

    def setup(*overrides: str):
        cfg = compose_cfg(
            "data.n_samples=600", "ckpt_path=last.ckpt", f"hydra.run.dir={tmp_path}", *overrides
        )
        datamodule = build_datamodule(cfg)
        datamodule.setup("fit")
        return cfg, datamodule

    trained_cfg, trained_data = setup("class_weights=balanced")
    checkpoint = _checkpoint(trained_cfg, trained_data)
    saved = np.round(checkpoint["state_dict"]["class_weights"].double().numpy(), 4).tolist()
    cfg, datamodule = setup("class_weights=none")  # same split, uniform weights
    with pytest.raises(UserError) as error:
        check_resume(cfg, datamodule, checkpoint)
    now = [1.0] * len(saved)
    message = f"trained with class_weights={saved} but the data and class_weights settings now give {now}"
    assert message in str(error.value)
    assert str(error.value).endswith(
        f"{now}; allowed: the data, class_weights and seed settings of the run "
        "being resumed (see its .hydra/config.yaml)"
    )
    cfg, datamodule = setup("class_weights=inverse_sqrt")  # both lists with their 4 decimals
    with pytest.raises(UserError) as error:
        check_resume(cfg, datamodule, checkpoint)
    now = np.round(datamodule.class_statistics.weights, 4).tolist()
    message = f"trained with class_weights={saved} but the data and class_weights settings now give {now}"
    assert message in str(error.value)
    # a checkpoint without the class_counts buffer is still held to its class weights
    state = {k: v for k, v in checkpoint["state_dict"].items() if k != "class_counts"}
    with pytest.raises(UserError, match="trained with class_weights="):
        check_resume(cfg, datamodule, {**checkpoint, "state_dict": state})
    # a fork's datamodule without an input transform (no input_transform_state) resumes too
    contract = DataContract(trained_data.class_statistics, backbone_inputs=trained_data.backbone_inputs())
    check_resume(trained_cfg, SimpleNamespace(contract=lambda: contract), checkpoint)


def test_resume_refuses_another_posthoc_tau_optimizer_or_scheduler_kind(compose_cfg, tmp_path):
    from imbalanced.from_config import build_datamodule
    from imbalanced.runs.resume import check_resume

    def cfg_with(*overrides: str):
        return compose_cfg(
            "data.n_samples=600", "ckpt_path=last.ckpt", f"hydra.run.dir={tmp_path}", *overrides
        )

    trained = cfg_with("posthoc_tau=1.0", "optimizer=adamw", "scheduler=cosine")
    datamodule = build_datamodule(trained)
    datamodule.setup("fit")
    checkpoint = {**_checkpoint(trained, datamodule), "posthoc_tau": 1.0}
    check_resume(trained, datamodule, checkpoint)  # the same settings resume
    # other values of the same kinds pass here (check_restored_settings refuses them later, in train)
    other_values = cfg_with("posthoc_tau=1.0", "scheduler=cosine", "optimizer.lr=0.01", "scheduler.T_max=9")
    check_resume(other_values, datamodule, checkpoint)
    refused = [
        (
            ("posthoc_tau=0.0", "scheduler=cosine"),
            r"^posthoc_tau=0.0 differs from the checkpoint's 1.0; allowed: the posthoc_tau of the run being "
            r"resumed \(1.0\)",
        ),
        (
            ("posthoc_tau=1.0", "scheduler=cosine", "optimizer=sgd"),
            r"^optimizer=torch.optim.SGD differs from the checkpoint's torch.optim.AdamW \(or its warm-up\); "
            r"allowed: the optimizer of the run being resumed \(see its \.hydra/config\.yaml\), whose state "
            r"the checkpoint holds$",
        ),
        (
            ("posthoc_tau=1.0", "scheduler=none"),
            r"^scheduler=None differs from the checkpoint's torch.optim.lr_scheduler.CosineAnnealingLR",
        ),
        (
            ("posthoc_tau=1.0", "scheduler=cosine", "scheduler.warmup_epochs=2"),
            r"^scheduler=.*\(or its warm-up\)",
        ),
    ]
    for overrides, message in refused:
        with pytest.raises(UserError, match=message):
            check_resume(cfg_with(*overrides), datamodule, checkpoint)
    # a checkpoint from before the config groups (optimizer saved as a name): its scheduler is compared
    old = {**checkpoint, "hyper_parameters": {**checkpoint["hyper_parameters"], "optimizer": "adamw"}}
    check_resume(cfg_with("posthoc_tau=1.0", "optimizer=sgd", "scheduler=cosine"), datamodule, old)
    with pytest.raises(UserError, match="^scheduler=None differs"):
        check_resume(cfg_with("posthoc_tau=1.0", "optimizer=sgd", "scheduler=none"), datamodule, old)
    # SGD resumed as SGD
    sgd = OmegaConf.to_container(cfg_with("optimizer=sgd").optimizer, resolve=True)
    trained_sgd = {**checkpoint, "hyper_parameters": {**checkpoint["hyper_parameters"], "optimizer": sgd}}
    check_resume(cfg_with("posthoc_tau=1.0", "optimizer=sgd", "scheduler=cosine"), datamodule, trained_sgd)
