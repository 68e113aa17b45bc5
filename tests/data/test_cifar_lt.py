"""data=cifar10_lt / cifar100_lt: the long-tailed split from CIFAR files the test writes (no network)."""

from __future__ import annotations

import pathlib
import pickle

import numpy as np
import pytest
import torch
from cifar_tree import image_ids, write_cifar_tree

from imbalanced.data.images.cifar import CifarLTDataModule
from imbalanced.data.images.cifar_pickle import load_batch
from imbalanced.data.profiles import long_tail_counts
from imbalanced.errors import UserError

PAPER_CIFAR10_COUNTS = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]


@pytest.fixture(scope="module")
def cifar10(tmp_path_factory):
    return write_cifar_tree(tmp_path_factory.mktemp("cifar"), "cifar10", train_per_class=60, test_per_class=5)


def test_the_papers_counts():
    counts = long_tail_counts(5000, 10, 100)
    assert counts.tolist() == PAPER_CIFAR10_COUNTS and counts.sum() == 12406
    assert long_tail_counts(500, 100, 100).sum() == 10847  # CIFAR-100-LT, ratio 100
    assert long_tail_counts(5000, 10, 10)[-1] == 500 and long_tail_counts(5000, 10, 200)[-1] == 25


def test_long_tailed_split_counts_and_disjoint_splits(cifar10):
    module = CifarLTDataModule(root=str(cifar10), n_max=50, imbalance_ratio=10, val_per_class=5, seed=3)
    module.setup("fit")
    splits = module.splits
    assert np.bincount(splits.y_train).tolist() == long_tail_counts(50, 10, 10).tolist()
    assert module.class_statistics.counts.tolist() == long_tail_counts(50, 10, 10).tolist()
    assert np.bincount(splits.y_val).tolist() == [5] * 10
    assert np.bincount(splits.y_test).tolist() == [5] * 10  # the whole balanced test set
    train, val, test = (set(image_ids(x).tolist()) for x in (splits.x_train, splits.x_val, splits.x_test))
    assert len(train) == len(splits.y_train) and len(val) == len(splits.y_val)
    assert not train & val and not (train | val) & test  # validation: unused training images only
    assert splits.x_train.dtype == np.uint8 and splits.x_train.shape[1:] == (3, 32, 32)
    assert module.class_names == [f"class{c}" for c in range(10)]
    again = CifarLTDataModule(root=str(cifar10), n_max=50, imbalance_ratio=10, val_per_class=5, seed=3)
    again.setup("fit")
    np.testing.assert_array_equal(again.splits.x_train, splits.x_train)  # seeded
    other = CifarLTDataModule(root=str(cifar10), n_max=50, imbalance_ratio=10, val_per_class=5, seed=4)
    other.setup("fit")
    assert set(image_ids(other.splits.x_train).tolist()) != train


def test_the_head_class_gives_up_its_validation_images(cifar10):
    module = CifarLTDataModule(root=str(cifar10), n_max=60, imbalance_ratio=10, val_per_class=4)
    module.setup("fit")
    expected = long_tail_counts(60, 10, 10)
    expected[0] = 56  # all 60 images would leave none for validation
    assert np.bincount(module.splits.y_train).tolist() == expected.tolist()
    assert np.bincount(module.splits.y_val).tolist() == [4] * 10


def test_cifar100_layout(tmp_path):
    root = write_cifar_tree(tmp_path, "cifar100", train_per_class=8, test_per_class=2)
    module = CifarLTDataModule(
        root=str(root), variant="cifar100", n_max=6, imbalance_ratio=10, val_per_class=2
    )
    module.setup("fit")
    assert module.num_classes == 100
    assert np.bincount(module.splits.y_train, minlength=100).tolist() == long_tail_counts(6, 100, 10).tolist()
    assert len(module.splits.y_test) == 200 and np.bincount(module.splits.y_val).tolist() == [2] * 100


def test_normalization_is_fitted_on_the_training_split(cifar10):
    module = CifarLTDataModule(root=str(cifar10), n_max=50, imbalance_ratio=10, val_per_class=5)
    module.setup("fit")
    state = module.input_transform_state()
    train = module.splits.x_train.astype(np.float64)
    np.testing.assert_allclose(state["mean"].flatten(), train.mean(axis=(0, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(state["std"].flatten(), train.std(axis=(0, 2, 3)), rtol=1e-5)
    assert module.input_transform()["_target_"].endswith("ImageNormalize")
    assert module.backbone_inputs() == {"in_channels": 3}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"imbalance_ratio": 30}, "data.imbalance_ratio"),
        ({"variant": "cifar20"}, "data.variant"),
        ({"val_per_class": 0}, "data.val_per_class"),
        ({"augment": {"mix": "mixup2"}}, "data.augment.mix"),
        ({"augment": {"cutout": 8}}, "data.augment.cutout is not a setting"),
        ({"augment": {"autoaugment": True}}, "needs data.backend=dataloader"),
        ({"augment": {"erasing": 1.5}}, "data.augment.erasing"),
    ],
)
def test_bad_settings_fail_in_the_constructor(tmp_path, settings, message):
    with pytest.raises(UserError, match=message):
        CifarLTDataModule(root=str(tmp_path), **settings)


def test_missing_or_foreign_files_are_named(tmp_path):
    with pytest.raises(UserError, match="lacks data_batch_1.*data.download=true"):
        CifarLTDataModule(root=str(tmp_path)).setup("fit")
    root = write_cifar_tree(tmp_path / "bad", train_per_class=2, test_per_class=1)
    (root / "cifar-10-batches-py" / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(UserError, match="test_batch is not a CIFAR batch file"):
        CifarLTDataModule(root=str(root), n_max=1, val_per_class=1).setup("fit")


def test_too_few_images_for_validation_is_named(cifar10):
    with pytest.raises(UserError, match="data.val_per_class=60 leaves no training image of class 'class0'"):
        CifarLTDataModule(root=str(cifar10), n_max=50, val_per_class=60).setup("fit")


def test_training_batches_are_augmented_and_evaluation_batches_are_not(cifar10):
    module = CifarLTDataModule(
        root=str(cifar10), n_max=50, imbalance_ratio=10, val_per_class=5, augment={"mix": "cutmix"}
    )
    module.setup("fit")

    class Trainer:
        training = True

    images = torch.as_tensor(module.splits.x_train[:16])
    labels = torch.as_tensor(module.splits.y_train[:16])
    module.trainer = Trainer()
    mixed, y_a, y_b, lam = module.on_after_batch_transfer((images, labels), 0)
    assert mixed.shape == images.shape and torch.equal(y_a, labels) and 0.0 <= lam <= 1.0
    assert sorted(y_b.tolist()) == sorted(labels.tolist())
    Trainer.training = False
    assert module.on_after_batch_transfer((images, labels), 0)[0] is images


class _TouchOnLoad:
    """Pickles to a call that creates `marker`: a plain pickle.load would run it."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def test_a_crafted_batch_file_is_refused_without_running(tmp_path):
    root = write_cifar_tree(tmp_path / "crafted", train_per_class=2, test_per_class=1)
    marker = tmp_path / "pickle_ran"
    batch = root / "cifar-10-batches-py" / "data_batch_1"
    batch.write_bytes(pickle.dumps({"data": _TouchOnLoad(marker), "labels": [0]}))
    with pytest.raises(UserError) as error:
        CifarLTDataModule(root=str(root), n_max=1, val_per_class=1).setup("fit")
    assert not marker.exists(), "the batch file ran code"
    assert str(error.value).startswith(
        f"{batch} is refused: it asks to load the Python object pathlib.Path.touch"
    )
    assert "\n" not in str(error.value)


def test_batches_pickled_by_python2_style_protocol_and_old_numpy_names_load(tmp_path):
    # the original files: protocol 2, numpy.core.multiarray (numpy 1.x); Python 3 adds _codecs.encode
    data = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072)
    content = pickle.dumps(
        {"data": data, "labels": [1, 0], "batch_label": "training batch 1 of 5"}, protocol=2
    ).replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
    assert b"numpy.core.multiarray\n_reconstruct" in content and b"_codecs\nencode" in content
    (tmp_path / "batch").write_bytes(content)
    loaded = load_batch(tmp_path / "batch")
    assert np.array_equal(loaded["data"], data) and loaded["labels"] == [1, 0]
    assert loaded["batch_label"] == "training batch 1 of 5"
