"""How image folders are listed: each real file once, under the class folder it is in; class names
that only look different are refused (data/images/sources.py, data/label_names.py)."""

from __future__ import annotations

import logging
import os
import unicodedata

import pandas as pd
import pytest
from image_trees import image_tree, write_image

from imbalanced.data.images.sources import image_paths, labelled_files
from imbalanced.data.tables.table_files import class_names_of
from imbalanced.errors import UserError


def test_link_loops_and_links_to_other_classes_are_not_walked(tmp_path, caplog):
    root = image_tree(tmp_path / "root", {"cat": 6, "dog": 6})
    os.symlink(".", root / "cat" / "self")  # a loop
    os.symlink("..", root / "dog" / "up")  # back to the root: every class again, under "dog"
    os.symlink(root / "dog" / "0.jpg", root / "cat" / "stolen.jpg")  # another class's image
    (tmp_path / "outside").mkdir()
    write_image(tmp_path / "outside" / "x.png", 10)
    os.symlink(tmp_path / "outside", root / "cat" / "out")  # out of the root
    with caplog.at_level(logging.WARNING):
        files = labelled_files("data.root", str(root))
    real_files = sorted((p.parent.name, p.name) for p in root.glob("*/*.*") if not p.is_symlink())
    listed = sorted(zip(files.labels, (os.path.basename(p) for p in files.paths), strict=True))
    assert listed == real_files and len(real_files) == 12
    assert len(files.paths) == len({os.path.realpath(p) for p in files.paths}) == 12
    assert "did not follow 4 link(s)" in caplog.text


def test_a_link_to_an_image_beside_it_counts_the_image_once(tmp_path):
    root = image_tree(tmp_path / "root", {"cat": 3, "dog": 3})
    (root / "cat" / "sub").mkdir()
    os.symlink(root / "cat" / "0.jpg", root / "cat" / "a_copy.jpg")  # listed before the real file
    os.symlink(root / "cat", root / "cat" / "sub" / "again")
    files = labelled_files("data.root", str(root))
    cats = [p for p, label in zip(files.paths, files.labels, strict=True) if label == "cat"]
    assert sorted(os.path.basename(p) for p in cats) == ["0.jpg", "1.png", "2.png"]


def test_a_class_folder_linked_out_of_the_root_or_to_another_class_is_refused(tmp_path):
    root = image_tree(tmp_path / "root", {"cat": 2, "dog": 2})
    os.symlink(root / "cat", root / "kitty")
    with pytest.raises(UserError, match="class folder 'cat' and 'kitty' are one folder"):
        labelled_files("data.root", str(root))
    os.unlink(root / "kitty")
    image_tree(tmp_path / "elsewhere", {"bird": 2})
    os.symlink(tmp_path / "elsewhere" / "bird", root / "bird")
    with pytest.raises(UserError, match="class folder 'bird' is a link to .* outside the folder"):
        labelled_files("data.root", str(root))


def test_a_predict_folder_does_not_follow_loops_and_names_what_it_ignores(tmp_path, caplog):
    folder = image_tree(tmp_path / "in", {"a": 2})
    os.symlink(".", folder / "a" / "loop")
    (folder / "a" / "notes.txt").write_text("x")
    with caplog.at_level(logging.WARNING):
        paths = image_paths("data.path", str(folder))
    assert len(paths) == 2
    assert "ignored 1 file(s) that are not images" in caplog.text
    assert "did not follow 1 link(s)" in caplog.text


def test_images_directly_in_the_root_are_named_in_a_warning(tmp_path, caplog):
    root = image_tree(tmp_path / "root", {"cat": 2, "dog": 2})
    write_image(root / "loose.png", 10)
    with caplog.at_level(logging.WARNING):
        labelled_files("data.root", str(root))
    assert "ignored 1 file(s) directly in the folder" in caplog.text and "loose.png" in caplog.text


NFC = unicodedata.normalize("NFC", "café")
NFD = unicodedata.normalize("NFD", "café")


@pytest.mark.parametrize(
    ("names", "shown"), [(["cat", "cat "], "[['cat', 'cat ']]"), ([NFC, NFD], r"[['cafe\u0301', 'caf\xe9']]")]
)
def test_class_folders_that_only_look_different_are_refused(names, shown, tmp_path):
    root = tmp_path / "root"
    for name in [*names, "dog"]:
        write_image(root / name / "0.png", 10)
        write_image(root / name / "1.png", 20)
    if len({p.name for p in root.iterdir()}) < 3:
        pytest.skip("this file system normalizes Unicode file names")
    with pytest.raises(UserError) as error:
        labelled_files("data.root", str(root))
    assert f"class names {shown} differ only by surrounding whitespace or Unicode normalization" in str(
        error.value
    )


def test_table_and_csv_labels_in_nfc_and_nfd_are_refused(tmp_path):
    with pytest.raises(UserError, match=r"labels \[\['cafe\\u0301', 'caf\\xe9'\]\] differ only by"):
        class_names_of(pd.Series([NFC, NFD, "tea"]))
    for i in range(2):
        write_image(tmp_path / f"{i}.png", 10)
    listing = tmp_path / "list.csv"
    pd.DataFrame({"path": ["0.png", "1.png"], "label": [NFC, NFD]}).to_csv(listing, index=False)
    with pytest.raises(UserError, match=r"list.csv: labels \[\['cafe\\u0301', 'caf\\xe9'\]\] differ only"):
        labelled_files("data.root", str(listing))


def test_an_image_that_fails_to_decode_in_a_worker_is_its_one_line(tmp_path, monkeypatch, capsys):
    from torch.utils.data import DataLoader

    from imbalanced.data.images.files import ImageFiles
    from imbalanced.runs.exit_codes import run_task

    bad = write_image(tmp_path / "cut.jpg", 10, size=(64, 64))
    bad.write_bytes(bad.read_bytes()[:300])  # a truncated JPEG: its header passes, decoding fails

    def task(cfg):
        return list(DataLoader(ImageFiles([str(bad)], [0], 3, (8, 8)), num_workers=1))

    with pytest.raises(SystemExit) as exit_:
        run_task(task, None)
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert err.startswith(f"error: {bad} is not a readable image (") and err.count("\n") == 1, err
