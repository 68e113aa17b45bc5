"""Slower text runs: the transformer on per-sample batches with a class-aware sampler, DDP on two CPU
processes, and a local Hugging Face encoder (a tiny random BERT saved by the test; no download)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from inprocess import run_app
from text_examples import write_texts

from conftest import read_json, run_cli

pytest.importorskip("tokenizers", reason="data=text needs the text extra: pip install 'imbalanced[text]'")

pytestmark = pytest.mark.slow

COUNTS = {"billing": 160, "login": 70, "shipping": 30, "refund": 14}
# one training: eval.py of last.ckpt reproduces the test metrics (the refit is tests/data/test_text_runs.py's)
TEXT = (
    "data=text",
    "data.text=text",
    "data.target=label",
    "data.vocab_size=400",
    "refit_with_validation=false",
    "test_checkpoint=last",  # data=text tests the best validation epoch; eval.py below reads last.ckpt
)
QUIET = ("callbacks.progress_bar.refresh_rate=0",)
WEIGHTS_LINE = re.compile(r"rank (\d) class_weights (\[.*\])")


def test_transformer_trains_on_padded_per_sample_batches_drawn_class_balanced(tmp_path, monkeypatch):
    data = write_texts(tmp_path / "tickets.jsonl", COUNTS)
    code = run_app(
        "train.py",
        *TEXT,
        f"data.path={data}",
        "model=text_transformer",
        "sampler=class_balanced",
        "data.backend=dataloader",
        "data.bucket_batches=4",
        "trainer.max_epochs=3",
        *QUIET,
        run_dir=tmp_path / "run",
        monkeypatch=monkeypatch,
    )
    assert code == 0
    metrics = read_json(tmp_path / "run" / "metrics.json")
    assert metrics["test/balanced_accuracy"] > 0.5  # chance: 0.25
    out = tmp_path / "eval"
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert run_app("eval.py", f"ckpt_path={ckpt}", run_dir=out, monkeypatch=monkeypatch) == 0
    assert read_json(out / "metrics.json")["test/macro_f1"] == pytest.approx(
        metrics["test/macro_f1"], abs=1e-6
    )


def test_ddp_cpu_ranks_agree_on_the_tokenizer_and_weights(tmp_path, monkeypatch):
    data = write_texts(tmp_path / "tickets.csv", COUNTS)
    result = run_cli(
        "train.py",
        *TEXT,
        f"data.path={data}",
        "trainer=ddp_cpu",
        "sampler=sqrt",
        "trainer.max_epochs=6",
        "optimizer.lr=0.01",
        *QUIET,
        run_dir=tmp_path / "run",
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    logs = {0: tmp_path / "run" / "train.log", 1: tmp_path / "run" / "train_ddp_process_1.log"}
    weights = {rank: WEIGHTS_LINE.findall(log.read_text()) for rank, log in logs.items()}
    assert [r for r, _ in weights[0]] == ["0"] and [r for r, _ in weights[1]] == ["1"]
    assert weights[0][0][1] == weights[1][0][1]
    # eval.py rebuilds the data in a new process and refuses a tokenizer that differs from the
    # checkpoint's (input spec): the ranks' tokenizers and this one are the same
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert run_app("eval.py", f"ckpt_path={ckpt}", run_dir=tmp_path / "eval", monkeypatch=monkeypatch) == 0
    metrics = read_json(tmp_path / "run" / "metrics.json")
    again = read_json(tmp_path / "eval" / "metrics.json")
    assert again["test/balanced_accuracy"] == pytest.approx(metrics["test/balanced_accuracy"], abs=1e-6)
    assert metrics["test/balanced_accuracy"] > 0.4  # chance: 0.25


def test_a_local_hugging_face_encoder_trains_predicts_and_refuses_a_foreign_tokenizer(
    tmp_path, monkeypatch, capsys
):
    transformers = pytest.importorskip("transformers", reason="model=hf_encoder needs the text extra")
    from imbalanced.data.text.tokenizer import train_tokenizer

    data = write_texts(tmp_path / "tickets.csv", COUNTS)
    folder = tmp_path / "tiny-bert"
    tokenizer = train_tokenizer(pd.read_csv(data)["text"].tolist(), 300)
    folder.mkdir()
    tokenizer.save(str(folder / "tokenizer.json"))
    config = transformers.BertConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        pad_token_id=0,
    )
    transformers.BertModel(config).save_pretrained(folder, safe_serialization=True)
    assert (folder / "model.safetensors").is_file()

    run = tmp_path / "run"
    code = run_app(
        "train.py",
        *TEXT,
        f"data.path={data}",
        f"data.tokenizer={folder}",
        "data.max_length=128",
        "model=hf_encoder",
        f"model.backbone.path={folder}",
        "trainer.max_epochs=3",
        *QUIET,
        run_dir=run,
        monkeypatch=monkeypatch,
    )
    assert code == 0
    assert np.isfinite(read_json(run / "metrics.json")["test/macro_f1"])
    lines = write_texts(tmp_path / "new.txt", {"login": 4, "refund": 4}, seed=3)
    output = tmp_path / "predictions.csv"
    code = run_app(
        "predict.py",
        f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}",
        f"data.path={lines}",
        f"output_path={output}",
        "+trainer.enable_progress_bar=false",
        run_dir=tmp_path / "p",
        monkeypatch=monkeypatch,
    )
    assert code == 0
    table = pd.read_csv(output)
    assert len(table) == 8
    np.testing.assert_allclose(table.filter(like="prob_").sum(axis=1), 1.0, rtol=1e-5)

    # the tokenizer trained by data=text (no data.tokenizer) has more ids than this model embeds
    small = tmp_path / "tiny"
    config = transformers.BertConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
    )
    transformers.BertModel(config).save_pretrained(small, safe_serialization=True)
    capsys.readouterr()
    code = run_app(
        "train.py",
        *TEXT,
        f"data.path={data}",
        "model=hf_encoder",
        f"model.backbone.path={small}",
        run_dir=tmp_path / "refused",
        monkeypatch=monkeypatch,
    )
    assert code == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("error: the tokenizer has ")
        and f"data.tokenizer={small}" in err
        and err.count("\n") == 1
    )
