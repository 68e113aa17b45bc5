"""Bad text input through train.py: exit code 2 and one `error:` line naming the row, line or column,
before any tokenizer is trained or any training starts."""

from __future__ import annotations

import pytest
from inprocess import run_app
from text_examples import make_texts

pytest.importorskip("tokenizers", reason="data=text needs the text extra: pip install 'imbalanced[text]'")

COUNTS = {"billing": 30, "login": 20, "refund": 10}


def _csv(frame, path):
    frame.to_csv(path, index=False)


def _empty_text(frame, path):
    frame.loc[[4, 9], "text"] = ["   ", ""]  # pandas reads "" as a missing value, "   " as text
    _csv(frame, path)


def _number_column(frame, path):
    _csv(frame.assign(text=range(len(frame))), path)


def _bad_byte(frame, path):
    _csv(frame, path)
    data = path.read_bytes().splitlines(keepends=True)
    data[3] = data[3].replace(b"the", b"th\xff", 1) if b"the" in data[3] else b"\xff" + data[3]
    path.write_bytes(b"".join(data))


def _jsonl_not_object(frame, path):
    path.write_text('{"text": "fine", "label": "a"}\n["a", "list"]\n', encoding="utf-8")


BAD = {
    "missing text column": (
        _csv,
        "data.text=body",
        "tickets.csv",
        "error: data.text=body: no such column in data.path=",
    ),
    "empty texts": (
        _empty_text,
        None,
        "tickets.csv",
        "the text column 'text' is empty in 1 row(s) (data rows 9)",
    ),
    "numbers, not text": (_number_column, None, "tickets.csv", "data.text=text: the column of data.path="),
    "undecodable bytes": (_bad_byte, None, "tickets.csv", "line 4 is not valid UTF-8 (byte 0xff)"),
    "a JSON line that is not an object": (
        _jsonl_not_object,
        None,
        "t.jsonl",
        "line 2 is a JSON list, not an object",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_text_input_is_one_error_line_before_training(case, tmp_path, monkeypatch, capsys):
    write, override, name, expected = BAD[case]
    path = tmp_path / name
    write(make_texts(COUNTS), path)
    overrides = ["data=text", f"data.path={path}", "data.text=text", "data.target=label"]
    if override:
        overrides.append(override)
    capsys.readouterr()
    assert run_app("train.py", *overrides, run_dir=tmp_path / "run", monkeypatch=monkeypatch) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and expected in err, err
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_whitespace_only_text_is_named_by_its_row(tmp_path, monkeypatch, capsys):
    frame = make_texts(COUNTS)
    frame.loc[7, "text"] = "   "
    frame.to_json(tmp_path / "t.jsonl", orient="records", lines=True)  # JSON keeps it a string
    capsys.readouterr()
    overrides = ["data=text", f"data.path={tmp_path / 't.jsonl'}", "data.text=text", "data.target=label"]
    assert run_app("train.py", *overrides, run_dir=tmp_path / "run", monkeypatch=monkeypatch) == 2
    err = capsys.readouterr().err
    assert "has 1 empty text(s) (data rows 7)" in err and err.count("\n") == 1, err


def test_a_missing_setting_names_it(tmp_path, monkeypatch, capsys):
    path = tmp_path / "t.csv"
    make_texts(COUNTS).to_csv(path, index=False)
    capsys.readouterr()
    code = run_app(
        "train.py",
        "data=text",
        f"data.path={path}",
        "data.target=label",
        run_dir=tmp_path / "r",
        monkeypatch=monkeypatch,
    )
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: data.text is not set; name the text column") and "['text', 'label']" in err
