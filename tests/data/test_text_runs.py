"""data=text through the real entry points: a file of texts made here trains (train.py with only the
data settings), evaluates (eval.py) and predicts (predict.py) from the checkpoint alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from inprocess import run_app
from omegaconf import OmegaConf
from text_examples import make_texts, write_texts

from conftest import read_json

pytest.importorskip("tokenizers", reason="data=text needs the text extra: pip install 'imbalanced[text]'")

COUNTS = {"billing": 240, "login": 100, "shipping": 45, "refund": 20}
QUIET = ("+trainer.enable_progress_bar=false",)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("text_run")
    data = write_texts(root / "tickets.csv", COUNTS)
    code = run_app(
        "train.py",
        "data=text",
        f"data.path={data}",
        "data.text=text",
        "data.target=label",
        # small and short, for the test's time; everything else is the default text run
        "data.vocab_size=500",
        "trainer.max_epochs=6",
        "optimizer.lr=0.01",
        "callbacks.progress_bar.refresh_rate=0",
        run_dir=root / "train",
    )
    assert code == 0
    return {
        "root": root,
        "data": data,
        "dir": root / "train",
        # refit_with_validation=auto refits texts up to 10,000 training rows: the tested model
        "ckpt": root / "train" / "checkpoints" / "refit.ckpt",
    }


def test_a_text_file_trains_with_the_default_text_recipe(run):
    metrics = read_json(run["dir"] / "metrics.json")
    weights = read_json(run["dir"] / "class_weights.json")
    assert metrics["class_names"] == weights["class_names"] == sorted(COUNTS)
    # the logit-adjusted loss corrects the prior itself, so class_weights=auto adds no weights
    assert weights["strategy"] == "none"
    np.testing.assert_allclose(weights["weights"], np.ones(len(COUNTS)))
    assert metrics["test/balanced_accuracy"] > 0.6  # chance: 0.25
    hparams = torch.load(run["ckpt"], map_location="cpu", weights_only=True)["hyper_parameters"]
    assert hparams["backbone"]["_target_"] == "imbalanced.models.TextBag"
    assert hparams["backbone"]["char_buckets"] == 32768 and hparams["backbone"]["dropout"] == 0.5
    assert hparams["loss"]["_target_"] == "imbalanced.longtail.losses.LogitAdjusted"
    config = OmegaConf.load(run["dir"] / ".hydra" / "config.yaml")
    assert config.test_checkpoint == "best" and config.optimizer.weight_decay == 0.01


def test_eval_reproduces_the_test_metrics_and_reads_a_labelled_jsonl_file(run, monkeypatch):
    out = run["root"] / "eval"
    assert run_app("eval.py", f"ckpt_path={run['ckpt']}", *QUIET, run_dir=out, monkeypatch=monkeypatch) == 0
    training, evaluated = read_json(run["dir"] / "metrics.json"), read_json(out / "metrics.json")
    for key in ("test/balanced_accuracy", "test/macro_f1", "test/per_class_recall"):
        assert evaluated[key] == pytest.approx(training[key], abs=1e-6)

    other = write_texts(run["root"] / "other.jsonl", dict.fromkeys(COUNTS, 15), seed=4)
    out = run["root"] / "eval_file"
    code = run_app(
        "eval.py",
        f"ckpt_path={run['ckpt']}",
        f"data.test_path={other}",
        *QUIET,
        run_dir=out,
        monkeypatch=monkeypatch,
    )
    assert code == 0
    report = read_json(out / "metrics.json")
    assert report["test/num_samples"] == 60 and report["test/balanced_accuracy"] > 0.6


def test_predict_reads_one_text_per_line_or_a_table_with_its_id_column(run, monkeypatch, capsys):
    lines = write_texts(run["root"] / "new.txt", {"billing": 10, "refund": 10}, seed=7)
    output = run["root"] / "predictions.csv"
    code = run_app(
        "predict.py",
        f"ckpt_path={run['ckpt']}",
        f"data.path={lines}",
        f"output_path={output}",
        *QUIET,
        run_dir=run["root"] / "p",
        monkeypatch=monkeypatch,
    )
    assert code == 0
    table = pd.read_csv(output)
    texts = lines.read_text().splitlines()
    assert len(table) == len(texts) == 20 and len({len(t.split()) for t in texts}) > 10  # varied lengths
    assert table.columns[0] == "prediction" and list(table.columns[1:]) == [
        f"prob_{c}" for c in sorted(COUNTS)
    ]
    np.testing.assert_allclose(table.filter(like="prob_").sum(axis=1), 1.0, rtol=1e-5)
    truth = make_texts({"billing": 10, "refund": 10}, seed=7)["label"]
    assert (table["prediction"] == truth).mean() > 0.7

    frame = make_texts({"login": 3, "shipping": 3}, seed=8).drop(columns="label")
    frame.insert(0, "ticket", [f"t{i}" for i in range(6)])
    frame.to_csv(run["root"] / "new.csv", index=False)
    output = run["root"] / "predictions_ids.csv"
    code = run_app(
        "predict.py",
        f"ckpt_path={run['ckpt']}",
        f"data.path={run['root'] / 'new.csv'}",
        "+data.id=ticket",
        f"output_path={output}",
        *QUIET,
        run_dir=run["root"] / "p2",
        monkeypatch=monkeypatch,
    )
    assert code == 0
    assert pd.read_csv(output)["ticket"].tolist() == [f"t{i}" for i in range(6)]

    capsys.readouterr()
    code = run_app(
        "eval.py",
        f"ckpt_path={run['ckpt']}",
        f"data.test_path={lines}",
        *QUIET,
        run_dir=run["root"] / "e",
        monkeypatch=monkeypatch,
    )
    assert code == 2
    assert "a .txt file (one text per line) holds no labels to evaluate against" in capsys.readouterr().err


def test_the_checkpoint_tokenizer_gives_the_ids_the_model_trained_on(run):
    from omegaconf import OmegaConf

    from imbalanced.classifier import ImbalancedClassifier
    from imbalanced.data.text.text_datamodule import TextDataModule
    from imbalanced.from_config import build_datamodule

    model = ImbalancedClassifier.load_from_checkpoint(run["ckpt"], map_location="cpu")
    datamodule = build_datamodule(OmegaConf.load(run["dir"] / ".hydra" / "config.yaml"))
    datamodule.setup("test")
    frame = make_texts(COUNTS)  # the training file, whose test rows the datamodule holds
    frame.to_csv(run["root"] / "all.csv", index=False)
    saved = model.hparams.data
    assert saved["inputs"]["text"]["char_ngrams"] == [3, 5]  # model=text_bag's character n-grams
    read = TextDataModule.read_inputs(
        str(run["root"] / "all.csv"),
        setting="data.test_path",
        config=saved["config"],
        spec=saved["inputs"],
        class_names=model.class_names,
        labelled=True,
    )
    # every text of the test split is encoded to the same ids from the checkpoint alone
    test = datamodule.batch_dataset("test")
    from_checkpoint = {tuple(read.dataset.sequence(i).tolist()) for i in range(len(read))}
    assert all(tuple(test.sequence(i).tolist()) in from_checkpoint for i in range(len(test)))
    assert len(read) == sum(COUNTS.values())
