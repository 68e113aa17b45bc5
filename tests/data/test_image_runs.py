"""Image runs end to end, in-process: an image folder with ResNet-32 (train, eval.py, predict.py) and
the offline data=digits_images with the small CNN."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from image_trees import image_tree
from inprocess import run_app

from conftest import read_json

pytestmark = pytest.mark.slow
COUNTS = {"ant": 16, "bee": 8, "cow": 6}
QUIET = ["callbacks.progress_bar.refresh_rate=0", "trainer.max_epochs=1"]


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    root = image_tree(tmp_path_factory.mktemp("images") / "images", COUNTS)
    run_dir = tmp_path_factory.mktemp("run") / "train"
    code = run_app(
        "train.py",
        "data=image_folder",
        f"data.root={root}",
        "data.image_size=8",
        "data.num_workers=1",
        "model=resnet32",
        "data.batch_size=8",
        *QUIET,
        run_dir=run_dir,
    )
    assert code == 0
    tested = read_json(run_dir / "metrics.json")["tested_checkpoint"]
    assert tested == "checkpoints/refit.ckpt"  # a small folder refits on training + validation images
    return {"root": root, "dir": run_dir, "ckpt": run_dir / tested}


def test_class_weights_count_the_files_of_each_class_folder_minus_the_split(folder_run):
    weights = read_json(folder_run["dir"] / "class_weights.json")
    metrics = read_json(folder_run["dir"] / "metrics.json")
    assert weights["class_names"] == metrics["class_names"] == sorted(COUNTS)
    files = np.array([len(list((folder_run["root"] / name).iterdir())) for name in sorted(COUNTS)])
    held_out = files - np.asarray(weights["counts"])  # stratified val + test: about 30% of each class
    assert (held_out >= 2).all() and held_out.sum() == pytest.approx(0.3 * files.sum(), abs=3)


def test_eval_reproduces_the_test_metrics_of_the_image_run(folder_run, tmp_path, monkeypatch):
    code = run_app(
        "eval.py",
        f"ckpt_path={folder_run['ckpt']}",
        "+trainer.enable_progress_bar=false",
        run_dir=tmp_path / "eval",
        monkeypatch=monkeypatch,
    )
    assert code == 0
    trained = read_json(folder_run["dir"] / "metrics.json")
    evaluated = read_json(tmp_path / "eval" / "metrics.json")
    assert evaluated["test/balanced_accuracy"] == pytest.approx(trained["test/balanced_accuracy"], abs=1e-6)
    assert evaluated["test/per_class_recall"] == pytest.approx(trained["test/per_class_recall"], abs=1e-6)


def test_eval_of_other_labelled_images_agrees_with_predict_on_them(folder_run, tmp_path, monkeypatch, capsys):
    from sklearn.metrics import balanced_accuracy_score

    other = image_tree(tmp_path / "other", {"ant": 3, "bee": 3, "cow": 3})
    code = run_app(
        "eval.py",
        f"ckpt_path={folder_run['ckpt']}",
        f"data.test_path={other}",
        "+trainer.enable_progress_bar=false",
        run_dir=tmp_path / "eval",
        monkeypatch=monkeypatch,
    )
    assert code == 0
    evaluated = read_json(tmp_path / "eval" / "metrics.json")
    assert evaluated["test/num_samples"] == 9 and evaluated["test_data"] == str(other)
    code = run_app(
        "predict.py",
        f"ckpt_path={folder_run['ckpt']}",
        f"data.path={other}",
        f"output_path={tmp_path / 'other.csv'}",
        run_dir=tmp_path / "p",
        monkeypatch=monkeypatch,
    )
    assert code == 0
    predicted = pd.read_csv(tmp_path / "other.csv")
    truth = [path.split("/")[-2] for path in predicted["path"]]  # the class folder of each image
    assert balanced_accuracy_score(truth, predicted["prediction"]) == pytest.approx(
        evaluated["test/balanced_accuracy"], abs=1e-6
    )
    unknown = image_tree(tmp_path / "unknown", {"ant": 1, "elk": 1})
    capsys.readouterr()
    code = run_app(
        "eval.py",
        f"ckpt_path={folder_run['ckpt']}",
        f"data.test_path={unknown}",
        run_dir=tmp_path / "eval2",
        monkeypatch=monkeypatch,
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "has class(es) ['elk'] that the model does not know" in err


def test_predict_writes_one_row_per_image_of_a_folder_or_a_list(folder_run, tmp_path, monkeypatch):
    folder = folder_run["root"] / "cow"
    code = run_app(
        "predict.py",
        f"ckpt_path={folder_run['ckpt']}",
        f"data.path={folder}",
        f"output_path={tmp_path / 'folder.csv'}",
        run_dir=tmp_path / "p1",
        monkeypatch=monkeypatch,
    )
    assert code == 0
    table = pd.read_csv(tmp_path / "folder.csv")
    assert list(table.columns) == ["path", "prediction", "prob_ant", "prob_bee", "prob_cow"]
    assert sorted(table["path"]) == sorted(str(p) for p in folder.iterdir())
    assert set(table["prediction"]) <= set(COUNTS)
    np.testing.assert_allclose(table[["prob_ant", "prob_bee", "prob_cow"]].sum(axis=1), 1.0, atol=1e-5)
    listing = tmp_path / "images.txt"
    listing.write_text(f"{folder / '1.png'}\n{folder_run['root'] / 'ant' / '0.jpg'}\n")
    code = run_app(
        "predict.py",
        f"ckpt_path={folder_run['ckpt']}",
        f"data.path={listing}",
        f"output_path={tmp_path / 'list.csv'}",
        run_dir=tmp_path / "p2",
        monkeypatch=monkeypatch,
    )
    assert code == 0
    assert list(pd.read_csv(tmp_path / "list.csv")["path"]) == listing.read_text().split()


def test_digits_images_train_offline_with_the_small_cnn(tmp_path, monkeypatch):
    code = run_app(
        "train.py",
        "data=digits_images",
        "model=small_cnn",
        "optimizer.lr=0.01",
        "trainer.max_epochs=2",
        "callbacks.progress_bar.refresh_rate=0",
        run_dir=tmp_path / "run",
        monkeypatch=monkeypatch,
    )
    assert code == 0
    weights = read_json(tmp_path / "run" / "class_weights.json")
    digits = read_json(tmp_path / "run" / "metrics.json")
    assert weights["counts"][0] >= 9 * weights["counts"][-1]  # long-tailed as data=digits
    assert digits["test/balanced_accuracy"] > 0.3  # well above chance (0.1) after 2 short epochs
