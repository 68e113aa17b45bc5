"""`refit_with_validation=true`: a fresh model trained on training + validation rows is what is tested."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from imbalanced.data.datamodule import LoaderDataModule
from imbalanced.data.tables.standardize import fit_standardization
from imbalanced.errors import UserError
from imbalanced.from_config import build_datamodule
from imbalanced.runs.refit import refit_enabled
from imbalanced.tasks.train import train


def test_merging_validation_recounts_classes_and_rescales(compose_cfg):
    datamodule = build_datamodule(compose_cfg("data.n_samples=600"))
    datamodule.setup("fit")
    splits = datamodule.splits
    x_train, y_train, x_val, y_val = splits.x_train, splits.y_train, splits.x_val, splits.y_val
    fingerprint = datamodule.data_fingerprint
    datamodule.merge_validation_into_training()

    classes = datamodule.num_classes
    expected = np.bincount(y_train, minlength=classes) + np.bincount(y_val, minlength=classes)
    assert np.array_equal(datamodule.class_statistics.counts, expected)
    merged = np.concatenate([x_train, x_val])
    served = torch.cat([batch[0] for batch in datamodule.train_dataloader()])
    assert len(served) >= len(merged)  # padded to whole batches at most
    assert {round(v, 4) for v in served[:, 0].tolist()} == {round(v, 4) for v in merged[:, 0].tolist()}
    mean, scale = fit_standardization(merged)
    assert np.allclose(datamodule.feature_mean, mean) and np.allclose(datamodule.feature_scale, scale)
    assert np.array_equal(datamodule.splits.y_val, y_val)  # validation itself is unchanged
    assert datamodule.data_fingerprint == fingerprint  # eval.py still recognises the run's data


def test_refit_auto_follows_the_datamodule_and_true_needs_merging(compose_cfg):
    table = build_datamodule(compose_cfg("data.n_samples=600"))
    table.setup("fit")
    assert refit_enabled(compose_cfg(), table)  # auto: small feature tables refit ...
    large = build_datamodule(compose_cfg())
    large.setup("fit")  # data=synthetic: 14,000 training rows
    assert not refit_enabled(compose_cfg(), large)  # ... large ones do not
    assert refit_enabled(compose_cfg("refit_with_validation=true"), large)
    assert not refit_enabled(compose_cfg("refit_with_validation=false"), table)
    images = build_datamodule(compose_cfg("data=digits_images"))
    images.setup("fit")
    assert not refit_enabled(compose_cfg(), images)  # auto: the bundled digits images, no refit
    assert refit_enabled(compose_cfg("refit_with_validation=true"), images)
    with pytest.raises(
        UserError,
        match=r"refit_with_validation=true needs a datamodule .*allowed: "
        r"refit_with_validation=false",
    ):
        refit_enabled(compose_cfg("refit_with_validation=true"), LoaderDataModule())
    assert not refit_enabled(compose_cfg(), LoaderDataModule())  # auto on data that cannot merge: no refit


def test_an_image_folder_refits_by_default_on_its_training_and_validation_files(compose_cfg, tmp_path):
    from image_trees import image_tree

    from imbalanced.data.images.files import load_image
    from imbalanced.data.images.normalize import channel_statistics

    root = image_tree(tmp_path / "images", {"ant": 12, "bee": 8, "cow": 6})
    cfg = compose_cfg(
        "data=image_folder", f"data.root={root}", "data.num_workers=0", "data.val_fraction=0.25"
    )
    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")
    assert refit_enabled(cfg, datamodule)  # auto: a folder of up to 10,000 images refits
    datamodule.refit_max_rows = len(datamodule.split_labels("train")) - 1
    assert not refit_enabled(cfg, datamodule)  # ... a larger one does not
    assert refit_enabled(compose_cfg("refit_with_validation=true"), datamodule)

    train, val = datamodule.datasets.train, datamodule.datasets.val
    fingerprint = datamodule.data_fingerprint
    first_statistics = datamodule.input_transform_state()
    datamodule.merge_validation_into_training()

    merged = datamodule.datasets.train
    assert merged.paths == [*train.paths, *val.paths]
    expected = np.bincount(train.targets, minlength=3) + np.bincount(val.targets, minlength=3)
    assert np.array_equal(datamodule.class_statistics.counts, expected)
    served = torch.cat([labels for _, labels in datamodule.train_dataloader()])
    assert sorted(served.tolist()) == sorted(merged.targets.tolist())
    # the refit model normalizes by the images it trains on
    images = torch.stack([load_image(path, 3, datamodule.image_size) for path in merged.paths])
    refit_statistics = datamodule.input_transform_state()
    assert torch.allclose(refit_statistics["mean"], channel_statistics(images)["mean"])
    assert not torch.allclose(refit_statistics["mean"], first_statistics["mean"])
    assert datamodule.datasets.val is val and datamodule.data_fingerprint == fingerprint


def test_refit_setting_must_be_auto_or_a_boolean(compose_cfg, tmp_path):
    with pytest.raises(
        UserError, match=r"refit_with_validation='yes' is invalid; allowed: auto, true or false"
    ):
        train(compose_cfg("refit_with_validation=yes", f"paths.output_dir={tmp_path}"))
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.slow
def test_refit_model_is_trained_on_train_and_val_and_is_the_one_tested(compose_cfg, tmp_path):
    from imbalanced.tasks.evaluate import evaluate

    run = tmp_path / "run"
    quiet = ["data.n_samples=600", "trainer.max_epochs=3", "~callbacks.progress_bar"]
    report = train(compose_cfg(*quiet, f"paths.output_dir={run}"))  # auto: a table refits

    datamodule = build_datamodule(compose_cfg("data.n_samples=600"))
    datamodule.setup("fit")
    rows = len(datamodule.splits.y_train) + len(datamodule.splits.y_val)
    assert report["refit_with_validation"] == {"epochs": 3, "train_rows": rows}

    refit = torch.load(run / "checkpoints" / "refit.ckpt", weights_only=True)
    last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    batch_size = compose_cfg().data.batch_size
    assert refit["global_step"] == 3 * -(-rows // batch_size)  # 3 epochs over the merged rows
    assert refit["refit_with_validation"]["epochs"] == 3
    assert float(refit["state_dict"]["class_counts"].sum()) == rows
    assert float(last["state_dict"]["class_counts"].sum()) == len(datamodule.splits.y_train)
    backbone = [key for key in refit["state_dict"] if key.startswith("backbone.")]
    assert backbone and any(not torch.equal(refit["state_dict"][k], last["state_dict"][k]) for k in backbone)
    # the decision and calibration fitted on validation by the first model travel with the refit one
    assert refit["prediction_policy"] == last["prediction_policy"]

    # metrics.json's test scores are the refit checkpoint's
    eval_cfg = compose_cfg(
        f"ckpt_path={run / 'checkpoints' / 'refit.ckpt'}",
        f"paths.output_dir={tmp_path / 'eval'}",
        config_name="eval",
    )
    evaluated = evaluate(eval_cfg)
    assert evaluated["test/balanced_accuracy"] == pytest.approx(report["test/balanced_accuracy"], abs=1e-6)

    # a finished refit model is not a training state: resuming from it is refused
    with pytest.raises(
        UserError,
        match=r"refit on training \+ validation, which cannot be resumed; "
        r"allowed: the first training's checkpoint",
    ):
        train(
            compose_cfg(
                *quiet,
                f"ckpt_path={run / 'checkpoints' / 'refit.ckpt'}",
                f"paths.output_dir={tmp_path / 'resumed'}",
            )
        )


def test_the_hyperparameter_search_does_not_refit_each_trial(compose_cfg):
    """Trials are scored on validation by the first model: a refit per trial would be wasted."""
    from omegaconf import OmegaConf

    from conftest import CONFIG_DIR

    # the preset's own file: composing it needs the optuna extra (its sweeper plugin)
    assert OmegaConf.load(CONFIG_DIR / "hparams_search" / "optuna.yaml").refit_with_validation is False
    assert compose_cfg().refit_with_validation == "auto"
