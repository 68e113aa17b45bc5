"""Images that fail to decode after (or without) the setup check are one error line naming the file."""

from __future__ import annotations

import pytest
from image_trees import image_tree
from inprocess import run_app
from PIL import Image

from imbalanced.data.images.files import ImageFiles, unreadable_images
from imbalanced.errors import UserError


def _error_lines(capsys) -> list[str]:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err[-3000:]
    return [line for line in err.splitlines() if line.startswith("error: ")]


def _folder(tmp_path):
    return image_tree(tmp_path / "images", {"cat": 12, "dog": 6})


FOLDER = [
    "data=image_folder",
    "trainer.max_epochs=1",
    "callbacks.progress_bar.refresh_rate=0",
    "data.num_workers=0",
]


def test_a_truncated_training_image_is_one_line_when_the_statistics_decode_it(tmp_path, monkeypatch, capsys):
    root = _folder(tmp_path)
    cut = root / "cat" / "0.jpg"
    cut.write_bytes(cut.read_bytes()[: len(cut.read_bytes()) // 2])
    code = run_app(
        "train.py",
        *FOLDER,
        f"data.root={root}",
        "data.verify_images=false",
        run_dir=tmp_path / "run",
        monkeypatch=monkeypatch,
    )
    lines = _error_lines(capsys)
    assert code == 2 and len(lines) == 1, lines
    assert f"error: {cut} is not a readable image (" in lines[0]
    assert "remove or replace the file, or data.verify_images=true" in lines[0]


@pytest.mark.parametrize("limit", [100, 50])  # one image 1-2x Pillow's limit (a warning only), one above 2x
def test_a_decompression_bomb_is_one_line_naming_the_file(limit, tmp_path, monkeypatch, capsys):
    root = _folder(tmp_path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)  # the tree's images are 8-12 x 12 pixels
    code = run_app(
        "train.py",
        *FOLDER,
        f"data.root={root}",
        "data.verify_images=false",
        run_dir=tmp_path / "run",
        monkeypatch=monkeypatch,
    )
    lines = _error_lines(capsys)
    assert code == 2 and len(lines) == 1, lines
    assert "is refused: " in lines[0] and f"Image.MAX_IMAGE_PIXELS={limit}" in lines[0]
    assert str(root) in lines[0] and "remove or shrink the file (data.verify_images=true" in lines[0]


def test_a_bomb_in_a_dataloader_worker_is_one_line(tmp_path, monkeypatch, capsys):
    # given mean/std: no statistics pass, the first decode is in a worker process
    root = _folder(tmp_path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    code = run_app(
        "train.py",
        *FOLDER[:-1],
        "data.num_workers=1",
        f"data.root={root}",
        "data.verify_images=false",
        "data.mean=[0.5,0.5,0.5]",
        "data.std=[0.2,0.2,0.2]",
        run_dir=tmp_path / "run",
        monkeypatch=monkeypatch,
    )
    lines = _error_lines(capsys)
    assert code == 2 and len(lines) == 1, lines
    assert "Image.MAX_IMAGE_PIXELS=100" in lines[0] and str(root) in lines[0]


def test_the_setup_check_names_images_between_one_and_two_times_the_limit(tmp_path, monkeypatch):
    root = _folder(tmp_path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    small, large = root / "cat" / "0.jpg", root / "cat" / "2.png"  # 12 x 8 and 12 x 10 pixels
    problems = unreadable_images([str(small), str(large)])
    assert list(problems) == [str(large)] and "DecompressionBombError" in problems[str(large)]
    with pytest.raises(UserError, match=r"is refused: .* \(12x10 = 120 pixels\)"):
        ImageFiles([str(large)], [0], 3, (8, 8))[0]
