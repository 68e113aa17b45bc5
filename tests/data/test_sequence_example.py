"""The data contract carries a modality the core never saw: token sequences of different lengths.

tests/sequence_example/ holds a fork's datamodule (one example per line of a file, padded per batch
by its collate), backbone (mean embedding) and YAML, plugged in through Hydra's search path; its
package is trusted once, in its configs/trusted/packages.yaml. One training run is shared.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from inprocess import run_app

from conftest import read_json

EXAMPLE = Path(__file__).resolve().parents[1] / "sequence_example"
SEARCHPATH = f"hydra.searchpath=[file://{EXAMPLE / 'configs'}]"
COUNTS = {"common": 300, "middle": 90, "rare": 30}
QUIET = ("+trainer.enable_progress_bar=false",)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from sequence_example.tokens import write_examples

    root = tmp_path_factory.mktemp("sequences")
    data = write_examples(root / "train.tsv", COUNTS)
    code = run_app(
        "train.py",
        SEARCHPATH,
        "data=token_sequences",
        "model=mean_embedding",
        f"data.path={data}",
        "trainer.max_epochs=8",
        "optimizer.lr=0.01",
        "callbacks.progress_bar.refresh_rate=0",
        run_dir=root / "train",
    )
    assert code == 0
    return {"root": root, "dir": root / "train", "ckpt": root / "train" / "checkpoints" / "last.ckpt"}


def test_variable_length_sequences_train_with_the_training_split_class_weights(run):
    weights = read_json(run["dir"] / "class_weights.json")
    metrics = read_json(run["dir"] / "metrics.json")
    assert weights["class_names"] == metrics["class_names"] == sorted(COUNTS)
    counts = np.asarray(weights["counts"])
    np.testing.assert_allclose(weights["weights"], counts.sum() / (len(counts) * counts), rtol=1e-6)
    assert metrics["test/balanced_accuracy"] > 0.6  # chance is 1/3


def test_eval_reproduces_the_run_and_reads_a_labelled_file_through_the_collate(run, monkeypatch, capsys):
    from sequence_example.tokens import write_examples

    out = run["root"] / "eval"
    assert (
        run_app(
            "eval.py", SEARCHPATH, f"ckpt_path={run['ckpt']}", *QUIET, run_dir=out, monkeypatch=monkeypatch
        )
        == 0
    )
    training, evaluated = read_json(run["dir"] / "metrics.json"), read_json(out / "metrics.json")
    assert evaluated["test/balanced_accuracy"] == pytest.approx(training["test/balanced_accuracy"], abs=1e-6)
    assert evaluated["test/per_class_recall"] == pytest.approx(training["test/per_class_recall"], abs=1e-6)

    other = write_examples(run["root"] / "other.tsv", {"common": 20, "middle": 20, "rare": 20}, seed=5)
    out = run["root"] / "eval_file"
    assert (
        run_app(
            "eval.py",
            SEARCHPATH,
            f"ckpt_path={run['ckpt']}",
            f"data.test_path={other}",
            *QUIET,
            run_dir=out,
            monkeypatch=monkeypatch,
        )
        == 0
    )
    report = read_json(out / "metrics.json")
    assert report["test/num_samples"] == 60 and report["test_data"] == str(other)
    assert report["test/balanced_accuracy"] > 0.5


def test_predict_pads_each_batch_and_names_a_bad_line_in_one_error(run, monkeypatch, capsys):
    from sequence_example.tokens import write_examples

    inputs = write_examples(run["root"] / "new.txt", {"common": 40, "rare": 40}, seed=7, labelled=False)
    output = run["root"] / "predictions.csv"
    assert (
        run_app(
            "predict.py",
            SEARCHPATH,
            f"ckpt_path={run['ckpt']}",
            f"data.path={inputs}",
            f"output_path={output}",
            *QUIET,
            run_dir=run["root"] / "p",
            monkeypatch=monkeypatch,
        )
        == 0
    )
    table = pd.read_csv(output)
    lengths = [len(line.split()) for line in inputs.read_text().splitlines()]
    assert len(set(lengths)) > 10  # the batches really hold sequences of different lengths
    assert table["length"].tolist() == lengths  # one row per input, in order
    assert list(table.columns[1:3]) == ["prediction", "prob_common"]
    np.testing.assert_allclose(table.filter(like="prob_").sum(axis=1), 1.0, rtol=1e-5)

    bad = run["root"] / "bad.txt"
    bad.write_text("3 4 5\n7 x 9\n")
    capsys.readouterr()
    assert (
        run_app(
            "predict.py",
            SEARCHPATH,
            f"ckpt_path={run['ckpt']}",
            f"data.path={bad}",
            *QUIET,
            run_dir=run["root"] / "p2",
            monkeypatch=monkeypatch,
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err == (f"error: data.path={bad}: line 2 holds a token that is not an integer id ('7 x 9')\n")


def test_without_the_fork_on_the_search_path_its_code_is_not_trusted(run, monkeypatch, capsys):
    capsys.readouterr()
    assert (
        run_app(
            "eval.py",
            f"ckpt_path={run['ckpt']}",
            *QUIET,
            run_dir=run["root"] / "untrusted",
            monkeypatch=monkeypatch,
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "names code this template does not trust" in err and "trusted_packages: [sequence_example]" in err


def test_a_package_that_cannot_be_imported_is_named(run, monkeypatch, capsys):
    import sys

    for name in ("sequence_example", "sequence_example.tokens"):  # as if it were not on PYTHONPATH
        monkeypatch.setitem(sys.modules, name, None)
    capsys.readouterr()
    assert (
        run_app(
            "eval.py",
            SEARCHPATH,
            f"ckpt_path={run['ckpt']}",
            *QUIET,
            run_dir=run["root"] / "gone",
            monkeypatch=monkeypatch,
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith(f"error: ckpt_path={run['ckpt']}: its backbone._target_=sequence_example.tokens.")
    assert "must be importable: install it, or add its folder to PYTHONPATH" in err and err.count("\n") == 1


def test_the_core_names_nothing_of_the_sequences():
    from conftest import ROOT

    for path in (ROOT / "src" / "imbalanced").rglob("*.py"):
        text = path.read_text()
        assert "sequence_example" not in text and "MeanEmbedding" not in text, path


def test_eval_refuses_a_changed_file_by_its_label_fingerprint(run, monkeypatch, capsys):
    from sequence_example.tokens import write_examples

    data = run["root"] / "train.tsv"
    original = data.read_text()
    extra = write_examples(run["root"] / "extra.tsv", {"common": 30}, seed=9).read_text()
    data.write_text(original + extra)  # rows added: the seeded split, the test split with it, changes
    try:
        capsys.readouterr()
        assert (
            run_app(
                "eval.py",
                SEARCHPATH,
                f"ckpt_path={run['ckpt']}",
                *QUIET,
                run_dir=run["root"] / "ch",
                monkeypatch=monkeypatch,
            )
            == 2
        )
    finally:
        data.write_text(original)
    err = capsys.readouterr().err
    assert err.startswith(
        "error: the data rebuilt from the checkpoint's data config differs from training: "
        "the test (90 rows, was 84) split changed"
    )
