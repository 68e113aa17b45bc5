"""data=image_folder without training: counts from the file lists, the split, and every bad input."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from image_trees import image_tree, write_image

from imbalanced.data.images.files import read_image
from imbalanced.data.images.folder import ImageFolderDataModule
from imbalanced.errors import UserError

COUNTS = {"ant": 20, "bee": 10, "cow": 5}


def datamodule(**settings) -> ImageFolderDataModule:
    dm = ImageFolderDataModule(image_size=8, num_workers=0, seed=0, **settings)
    dm.setup("fit")
    return dm


@pytest.fixture
def tree(tmp_path):
    return image_tree(tmp_path / "images", COUNTS)


def test_counts_are_the_files_per_class_folder_minus_the_split(tree):
    dm = datamodule(root=str(tree))
    assert dm.class_names == sorted(COUNTS)
    sizes = {
        name: np.bincount(dm.split_labels(name).numpy(), minlength=3) for name in ("train", "val", "test")
    }
    np.testing.assert_array_equal(sizes["train"] + sizes["val"] + sizes["test"], list(COUNTS.values()))
    np.testing.assert_array_equal(dm.class_statistics.counts, sizes["train"])
    assert all((sizes[name] >= 1).all() for name in sizes)  # stratified: every class in every split
    again = datamodule(root=str(tree))  # seeded: the same files in each split
    assert dm.datasets.test.paths == again.datasets.test.paths
    image, label = dm.datasets.train[0]
    assert image.dtype == torch.uint8 and image.shape == (3, 8, 8) and 0 <= label < 3


def test_fixed_folders_and_a_csv_of_paths(tree, tmp_path):
    val = image_tree(tmp_path / "val", {"ant": 2, "cow": 1})
    dm = datamodule(train_dir=str(tree), val_dir=str(val), val_fraction=0.5)
    assert len(dm.datasets.val) == 3
    assert len(dm.datasets.train) + len(dm.datasets.test) == sum(COUNTS.values())
    csv = tmp_path / "labels.csv"
    rows = [
        f"images/{name}/{file.name},{name}" for name in COUNTS for file in sorted((tree / name).iterdir())[:4]
    ]  # relative to the CSV's folder
    csv.write_text("path,label\n" + "\n".join(rows) + "\n")
    dm = datamodule(root=str(csv), val_fraction=0.25, test_fraction=0.25)
    assert dm.class_names == sorted(COUNTS)
    np.testing.assert_array_equal(dm.class_statistics.counts, [2, 2, 2])


def test_grayscale_and_rgba_are_converted_and_resized(tmp_path):
    gray = write_image(tmp_path / "g.png", 100, (5, 7), "L")
    rgba = write_image(tmp_path / "a.png", 100, (9, 4), "RGBA")
    assert read_image(gray, 3, (6, 6)).shape == (3, 6, 6)
    assert read_image(rgba, 1, (4, 5)).shape == (1, 4, 5)
    image = read_image(gray, 3, (5, 7))
    assert torch.equal(image[0], image[2])  # grayscale repeated to RGB


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", r"data.root=.*missing: no such folder or file"),
        ("no_classes", r"has no class folders; expected .*/<class>/<image>"),
        ("empty_class", r"class folder\(s\) 'dog' \(1 other file\(s\)\) hold no images"),
        ("too_few", r"class\(es\) \{'cow': 2\} \(class: images\) are too rare for a stratified"),
        ("unreadable", r"1 file\(s\) are not readable images: .*bee/broken.png .*data.skip_unreadable=true"),
        ("val_class", r"data.val_dir=.* has class\(es\) \['yak'\] that the training images"),
    ],
)
def test_bad_inputs_stop_with_one_line_naming_the_problem(tmp_path, case, message):
    root = tmp_path / "images"
    settings = {"root": str(root)}
    if case == "missing":
        settings["root"] = str(tmp_path / "missing")
    elif case == "no_classes":
        write_image(root / "stray.png", 10)
    elif case == "empty_class":
        image_tree(root, {"cat": 4})
        (root / "dog").mkdir()
        (root / "dog" / "notes.txt").write_text("no images here")
    elif case == "too_few":
        image_tree(root, {"ant": 6, "cow": 2})
    elif case == "unreadable":
        image_tree(root, {"ant": 4, "bee": 4})
        (root / "bee" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    elif case == "val_class":
        image_tree(root, {"ant": 4, "bee": 4})
        settings["val_dir"] = str(image_tree(tmp_path / "val", {"yak": 1}))
    with pytest.raises(UserError, match=message) as error:
        datamodule(**settings)
    assert "\n" not in str(error.value)


def test_unreadable_files_can_be_skipped_with_a_warning_that_counts_them(tmp_path, caplog):
    root = image_tree(tmp_path / "images", {"ant": 6, "bee": 6})
    (root / "ant" / "cut.png").write_bytes((root / "ant" / "1.png").read_bytes()[:40])  # cut off
    (root / "bee" / "text.jpg").write_text("not an image")
    with caplog.at_level(logging.WARNING):
        dm = datamodule(root=str(root), skip_unreadable=True)
    assert "skipped 2 unreadable image(s)" in caplog.text
    total = sum(len(getattr(dm.datasets, name)) for name in ("train", "val", "test"))
    assert total == 12


def test_settings_are_checked_in_the_constructor(tree):
    with pytest.raises(UserError, match=r"data.channels=2 is invalid"):
        ImageFolderDataModule(root=str(tree), channels=2)
    with pytest.raises(UserError, match=r"data.image_size=\[8\] is invalid"):
        ImageFolderDataModule(root=str(tree), image_size=[8])
    with pytest.raises(UserError, match=r"data.mean=\[0.5\] is invalid"):
        ImageFolderDataModule(root=str(tree), mean=[0.5], std=[0.2])
    with pytest.raises(UserError, match=r"data.root is not set"):
        ImageFolderDataModule()


def test_only_the_splits_cut_from_the_pool_are_fingerprinted(tree, tmp_path):
    """eval.py data.test_dir=OTHER must not be refused as "changed data": a fixed folder cannot hold
    training images, so only the splits cut from data.root are compared."""
    cut = datamodule(root=str(tree))
    fixed = datamodule(root=str(tree), test_dir=str(image_tree(tmp_path / "test", {"ant": 2})))
    assert set(cut.state_dict()["data_fingerprint"]) == {"train", "val", "test"}
    assert set(fixed.state_dict()["data_fingerprint"]) == {"train", "val"}


def test_a_backbone_takes_the_image_settings_it_has_parameters_for(tree, compose_cfg):
    from imbalanced.from_config import backbone_config

    dm = datamodule(root=str(tree))
    dm.setup("fit")
    dm = dm.contract()
    resnet = backbone_config(compose_cfg("model=resnet32"), dm)
    assert resnet["in_channels"] == 3 and "image_size" not in resnet and "in_features" not in resnet
    assert backbone_config(compose_cfg(), dm)["in_features"] == 3 * 8 * 8  # the MLP: flattened pixels
    cfg = compose_cfg(
        "model=resnet32",
        "~model.backbone.depth",
        "~model.backbone.head",
        "model.backbone._target_=imbalanced.models.cosine.NormedLinear",
    )  # in/out_features
    with pytest.raises(UserError, match=r"needs out_features, which the data does not give \(it gives "):
        backbone_config(cfg, dm)


def test_normalization_statistics_are_decoded_once_per_training_split(tree, monkeypatch):
    """The model, a resume check and eval each ask for the contract: the statistics images (up to
    data.stats_images of them) are decoded once."""
    from imbalanced.data.images import folder

    decoded = []
    real = folder.load_image
    monkeypatch.setattr(folder, "load_image", lambda *a, **k: decoded.append(a[0]) or real(*a, **k))
    dm = datamodule(root=str(tree))
    first = dm.contract().input_transform_state
    assert len(decoded) == len(dm.datasets.train)  # fewer than stats_images: all of them
    second = dm.contract().input_transform_state
    assert len(decoded) == len(dm.datasets.train)
    torch.testing.assert_close(first, second)
