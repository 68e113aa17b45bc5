"""data=image_folder defaults chosen by measurement (docs/images-quality.md): the small CNN and the
logit-adjusted loss, the images' own size, no augmentation unless asked (never a flip by default),
the folder's own training budget."""

from __future__ import annotations

import pytest
import torch
from image_trees import image_tree, write_image

from imbalanced.data.images.folder import ImageFolderDataModule
from imbalanced.data.images.folder_augment import folder_augment_settings, folder_train_transform
from imbalanced.errors import UserError


@pytest.fixture
def tree(tmp_path):
    for name, count in {"a": 6, "b": 6}.items():
        for i in range(count):
            write_image(tmp_path / "images" / name / f"{i}.png", 40 if name == "a" else 200, (10, 12), seed=i)
    return tmp_path / "images"


def test_a_folder_trains_the_small_cnn_with_the_logit_adjusted_loss_unless_told_otherwise(compose_cfg):
    folder = compose_cfg("data=image_folder", "data.root=DIR")
    assert folder.model.backbone._target_ == "imbalanced.models.SmallCNN"
    assert folder.loss._target_ == "imbalanced.longtail.losses.LogitAdjusted"
    assert folder.class_weights._target_ == "imbalanced.longtail.weights.auto"  # none for this loss
    given = compose_cfg("data=image_folder", "data.root=DIR", "model=resnet32", "loss=cross_entropy")
    assert given.model.backbone._target_ == "imbalanced.models.CifarResNet"
    assert given.loss._target_ == "imbalanced.longtail.losses.CrossEntropy"
    assert compose_cfg().loss._target_ == "imbalanced.longtail.losses.CrossEntropy"  # tables: weighted CE


def test_image_size_null_keeps_the_images_own_size(tree):
    dm = ImageFolderDataModule(root=str(tree), num_workers=0, seed=0)
    dm.setup("fit")
    assert dm.image_size == (10, 12)  # (height, width) of the first training image
    image, _ = dm.datasets.train[0]
    assert image.shape == (3, 10, 12)
    assert dm.contract().input_spec["images"]["image_size"] == [10, 12]  # eval/predict read them alike


def test_no_augmentation_by_default_and_a_translation_on_request(tree):
    settings = folder_augment_settings(None, (28, 28))
    assert settings.crop_padding == 0 and settings.flip is False
    assert folder_train_transform(None, (28, 28)) is None
    assert folder_augment_settings({"crop_padding": None}, (28, 28)).crop_padding == 3
    assert folder_augment_settings({"crop_padding": None}, (8, 8)).crop_padding == 1
    assert folder_augment_settings({"crop_padding": None}, (32, 40)).crop_padding == 4
    assert folder_train_transform({"crop_padding": 0}, (8, 8)) is None  # everything off: no transform
    pytest.importorskip("torchvision", reason="the translation is a torchvision transform (vision extra)")
    translation = folder_train_transform({"crop_padding": None}, (8, 8))
    assert [type(step).__name__ for step in translation.transforms] == ["RandomCrop"]
    dm = ImageFolderDataModule(root=str(tree), num_workers=0, seed=0, augment={"crop_padding": None})
    dm.setup("fit")
    x, _ = next(iter(dm.train_dataloader()))
    assert x.dtype == torch.uint8 and x.shape[1:] == (3, 10, 12)
    assert dm.transform("val") is None  # validation and test images are never augmented


def test_a_given_train_transform_replaces_the_augmentation(tree):
    dm = ImageFolderDataModule(root=str(tree), num_workers=0, seed=0, train_transform=torch.nn.Identity())
    dm.setup("fit")
    assert isinstance(dm.transform("train"), torch.nn.Identity)


def test_bad_augment_settings_fail_at_construction(tree):
    with pytest.raises(UserError, match="data.augment.mix=mixup is not available"):
        ImageFolderDataModule(root=str(tree), augment={"mix": "mixup"})
    with pytest.raises(UserError, match="data.augment.crop_pad is not a setting"):
        ImageFolderDataModule(root=str(tree), augment={"crop_pad": 2})


def test_the_folder_budget_replaces_budget_min_steps(tree, caplog):
    from omegaconf import OmegaConf

    from imbalanced.runs.budget import apply_budget

    cfg = OmegaConf.create(
        {"trainer": {"max_epochs": None}, "budget": {"min_steps": 1500, "min_epochs": 1, "max_epochs": 200}}
    )
    dm = ImageFolderDataModule(root=str(tree), num_workers=0, seed=0, batch_size=4, budget_steps=10)
    dm.setup("fit")
    batches = len(dm.train_dataloader())
    with caplog.at_level("INFO", logger="imbalanced.runs.budget"):
        assert apply_budget(cfg, dm) == -(-10 // batches) == cfg.trainer.max_epochs
    assert "to train longer: trainer.max_epochs=N or data.budget_steps=N" in caplog.text
    unset = ImageFolderDataModule(root=str(tree), num_workers=0, seed=0, batch_size=4, budget_steps=None)
    unset.setup("fit")
    cfg.trainer.max_epochs = None
    assert apply_budget(cfg, unset) == min(-(-1500 // batches), 200)


def test_augmentation_without_torchvision_is_one_line_naming_the_extra(monkeypatch):
    import sys

    for name in ("torchvision", "torchvision.transforms"):
        monkeypatch.setitem(sys.modules, name, None)  # as in an install without the vision extra
    with pytest.raises(UserError) as error:
        folder_train_transform({"crop_padding": None}, (8, 8))
    assert str(error.value).startswith(
        "data.augment needs torchvision, which is not installed: install the `vision` extra"
    )


# ---- tiny folders: a smoke test of one's own images finishes quickly ------------------------------
def _tiny_folder_overrides(root) -> list[str]:
    """10 classes x 4 images, a quarter each held out for validation and test: one-batch epochs."""
    image_tree(root, {f"c{i}": 4 for i in range(10)})
    return ["data=image_folder", f"data.root={root}", "data.val_fraction=0.26", "data.test_fraction=0.26"]


def test_a_tiny_folder_trains_at_most_the_folder_pass_cap(compose_cfg, tmp_path, caplog):
    from imbalanced.runs.budget import apply_budget
    from imbalanced.tasks.train import build_datamodule

    cfg = compose_cfg(*_tiny_folder_overrides(tmp_path / "images"), "data.num_workers=0")
    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")
    assert len(datamodule.train_dataloader()) == 1  # 400 steps would be 400 one-batch epochs
    with caplog.at_level("INFO", logger="imbalanced.runs.budget"):
        assert apply_budget(cfg, datamodule) == cfg.trainer.max_epochs == 40
    assert "at most data.budget_max_epochs=40 passes" in caplog.text
    assert "to train longer: trainer.max_epochs=N or data.budget_max_epochs=N" in caplog.text


@pytest.mark.slow
def test_a_tiny_folder_run_trains_the_capped_epochs_and_writes_its_run(tmp_path, monkeypatch):
    from inprocess import run_app

    from conftest import read_json

    run_dir = tmp_path / "run"
    overrides = [
        *_tiny_folder_overrides(tmp_path / "images"),
        "callbacks.progress_bar.refresh_rate=0",
        "refit_with_validation=false",  # the cap is the subject; tests/runs/test_refit.py has the refit
    ]
    assert run_app("train.py", *overrides, run_dir=run_dir, monkeypatch=monkeypatch) == 0
    assert "test/balanced_accuracy" in read_json(run_dir / "metrics.json")
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["epoch"] + 1 == 40  # the folder's pass cap, not 200 one-batch epochs
