"""data=tabular in-process: labels, encoding, splits, file and checkpoint errors.

Bad tables through `python train.py` are in test_bad_inputs.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tabular_tables import CLASSES, make_table

from imbalanced.data.tables.encoding import FeatureEncoding
from imbalanced.errors import UserError
from imbalanced.from_config import build_datamodule


@pytest.fixture
def datamodule(compose_cfg, tmp_path):
    """setup() a tabular datamodule on `frame` (written as CSV unless a path is given)."""

    def _build(frame: pd.DataFrame | None = None, *overrides: str, path=None):
        if path is None:
            path = tmp_path / "train.csv"
            frame.to_csv(path, index=False)
        cfg = compose_cfg("data=tabular", f"data.path={path}", "data.target=label", *overrides)
        dm = build_datamodule(cfg)
        dm.setup("fit")
        return dm

    return _build


def test_string_labels_one_hot_and_seeded_stratified_split(datamodule):
    frame = make_table(300)
    dm = datamodule(frame)
    assert dm.class_names == list(CLASSES)
    assert dm.feature_names == ["signal", "noise", "color=blue", "color=green", "color=red", "flag"]
    splits = dm.splits
    assert len(splits.y_train) + len(splits.y_val) + len(splits.y_test) == 300
    assert len(splits.y_test) == pytest.approx(0.15 * 300, abs=1)
    # stratified: every split has every class, in about the file's proportions
    file_share = frame["label"].value_counts(normalize=True).reindex(CLASSES).to_numpy()
    for y in (splits.y_train, splits.y_val, splits.y_test):
        assert np.allclose(np.bincount(y, minlength=3) / len(y), file_share, atol=0.05)
    # counts come from the training split only
    assert dm.class_counts.tolist() == np.bincount(splits.y_train, minlength=3).tolist()
    # one-hot rows: exactly one category set
    assert np.all(splits.x_train[:, 2:5].sum(axis=1) == 1)
    # seeded: the same seed gives the same split, another seed another split
    again = datamodule(frame)
    assert np.array_equal(again.splits.x_test, splits.x_test)
    other = datamodule(frame, "seed=1")
    assert not np.array_equal(other.splits.x_test, splits.x_test)


def test_integer_labels_sort_numerically_and_parquet(datamodule, tmp_path):
    pytest.importorskip("pyarrow")
    frame = make_table(300).assign(label=lambda f: f["label"].map({"alpha": 10, "beta": 2, "gamma": 7}))
    path = tmp_path / "train.parquet"
    frame.to_parquet(path)
    dm = datamodule(path=path)
    assert dm.class_names == ["2", "7", "10"]
    counts = frame["label"].value_counts()
    assert dm.class_counts.sum() == len(dm.splits.y_train)
    assert dm.class_counts.argmax() == dm.class_names.index(str(counts.idxmax()))


def test_fixed_val_and_test_files(datamodule, tmp_path):
    val, test = make_table(40, seed=1), make_table(50, seed=2)
    val.to_csv(tmp_path / "val.csv", index=False)
    test[["label", "color", "flag", "noise", "signal"]].to_csv(tmp_path / "test.csv", index=False)
    dm = datamodule(
        make_table(300), f"data.val_path={tmp_path / 'val.csv'}", f"data.test_path={tmp_path / 'test.csv'}"
    )
    assert len(dm.splits.y_train) == 300  # nothing is split off when both files are given
    assert len(dm.splits.y_val) == 40 and len(dm.splits.y_test) == 50
    expected = test["label"].map({name: i for i, name in enumerate(CLASSES)}).to_numpy()
    assert np.array_equal(dm.splits.y_test, expected)
    assert np.allclose(dm.splits.x_test[:, 0], test["signal"].to_numpy(), atol=1e-6)  # column order


def test_drop_columns_and_unknown_category_encodes_as_zeros(datamodule):
    dm = datamodule(make_table(300), "data.drop_columns=[noise]")
    assert "noise" not in dm.feature_names
    encoding = FeatureEncoding.from_dict(dm.feature_encoding)
    new = pd.DataFrame({"signal": [0.5], "color": ["purple"], "flag": [True]})
    x = encoding.transform(new, "new")
    assert x.tolist() == [[0.5, 0.0, 0.0, 0.0, 1.0]]


def test_classes_only_in_training_are_fine_for_fixed_files(datamodule, tmp_path):
    make_table(40).query("label != 'gamma'").to_csv(tmp_path / "test.csv", index=False)
    dm = datamodule(make_table(300), f"data.test_path={tmp_path / 'test.csv'}")
    assert dm.class_names == list(CLASSES) and 2 not in set(dm.splits.y_test.tolist())


def test_checkpoint_errors(tmp_path):
    from imbalanced.tasks.from_checkpoint import load_classifier

    with pytest.raises(UserError, match=r"ckpt_path=.*none.ckpt: file not found"):
        load_classifier(tmp_path / "none.ckpt")
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match=r"junk.ckpt is not a readable checkpoint"):
        load_classifier(tmp_path / "junk.ckpt")
