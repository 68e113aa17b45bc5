"""data=digits: long-tailed training split (CIFAR-LT rule), balanced held-out val/test, seeded."""

import numpy as np
import pytest

from imbalanced.data.profiles import long_tail_counts
from imbalanced.data.tables.sklearn_digits import DigitsDataModule
from imbalanced.errors import UserError


def test_digits_training_counts_follow_the_long_tail():
    dm = DigitsDataModule(imbalance_ratio=10, val_per_class=20, test_per_class=40, seed=0)
    dm.setup("fit")
    counts = np.asarray(dm.class_counts)
    # the smallest digit class has 174 images; 60 are held out, so n_max = 114
    np.testing.assert_array_equal(counts, long_tail_counts(114, 10, 10.0))
    assert counts[0] == 114 and counts[-1] == 11 and (np.diff(counts) < 0).all()
    splits = dm.splits
    assert np.bincount(splits.y_val).tolist() == [20] * 10
    assert np.bincount(splits.y_test).tolist() == [40] * 10
    assert dm.class_names == [str(i) for i in range(10)] and dm.num_features == 64
    # no image is in two splits
    rows = {
        name: {
            r.tobytes() + bytes([y])
            for r, y in zip(getattr(splits, f"x_{name}"), getattr(splits, f"y_{name}"), strict=True)
        }
        for name in ("train", "val", "test")
    }
    assert not (rows["train"] & rows["test"]) and not (rows["val"] & rows["test"])


def test_digits_split_is_seeded():
    a, b, c = (DigitsDataModule(imbalance_ratio=20, seed=s) for s in (1, 1, 2))
    for dm in (a, b, c):
        dm.setup()
    np.testing.assert_array_equal(a.splits.x_train, b.splits.x_train)
    assert not np.array_equal(a.splits.x_test, c.splits.x_test)


@pytest.mark.parametrize(
    "kwargs", [{"val_per_class": 100, "test_per_class": 100}, {"imbalance_ratio": 0.5}, {"test_per_class": 0}]
)
def test_bad_digits_settings(kwargs):
    with pytest.raises(UserError, match="data\\."):
        DigitsDataModule(**kwargs).setup()
