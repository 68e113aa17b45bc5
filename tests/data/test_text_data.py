"""data=text without training: reading, splitting, the tokenizer, padding and length buckets."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from text_examples import make_texts, write_texts

from conftest import ROOT

pytest.importorskip("tokenizers", reason="data=text needs the text extra: pip install 'imbalanced[text]'")

from imbalanced.data.in_memory_batches import IndexBatchSampler  # noqa: E402
from imbalanced.data.sampling import ClassAwareBatchSampler  # noqa: E402
from imbalanced.data.text.batches import (  # noqa: E402
    LengthBucketedBatchSampler,
    PadCollate,
    TokenBatchDataset,
    TokenSequences,
)
from imbalanced.data.text.text_datamodule import TextDataModule  # noqa: E402
from imbalanced.data.text.tokenizer import encode_texts, pack, train_tokenizer, unpack  # noqa: E402

COUNTS = {"billing": 120, "login": 60, "shipping": 25, "refund": 10}


def datamodule(path, **settings) -> TextDataModule:
    module = TextDataModule(path=str(path), text="text", target="label", vocab_size=300, **settings)
    module.setup("fit")
    return module


@pytest.fixture(scope="module")
def texts_csv(tmp_path_factory):
    return write_texts(tmp_path_factory.mktemp("texts") / "tickets.csv", COUNTS)


def test_csv_jsonl_and_parquet_give_the_same_stratified_split_and_training_counts(texts_csv, tmp_path):
    csv = datamodule(texts_csv)
    for suffix in (".jsonl", ".parquet"):
        other = datamodule(write_texts(tmp_path / f"tickets{suffix}", COUNTS))
        assert other.data_fingerprint == csv.data_fingerprint
    names = csv.class_names
    per_split = {
        name: np.bincount(csv.split_labels(name).numpy(), minlength=len(names))
        for name in ("train", "val", "test")
    }
    np.testing.assert_array_equal(sum(per_split.values()), [COUNTS[n] for n in names])
    np.testing.assert_array_equal(csv.class_statistics.counts, per_split["train"])  # counted on training
    # stratified 70/15/15, then the split floor (min_train_rows=20) leaves a rare class 1 validation row
    assert per_split["val"][names.index("refund")] == 1 and per_split["val"][names.index("billing")] == 18
    vocab = csv.tokenizer.get_vocab_size()  # at most data.vocab_size: the merges run out on small data
    assert csv.backbone_inputs() == {
        "vocab_size": vocab,
        "padding_id": 0,
        "max_length": 256,
        "char_buckets": 0,
    }
    assert vocab <= 300


def test_the_tokenizer_is_learnt_from_the_training_split_only(tmp_path):
    train = write_texts(tmp_path / "train.csv", COUNTS)
    held_out = make_texts(COUNTS, seed=1)
    held_out["text"] = held_out["text"] + " zebracorn"  # a word only the validation and test files hold
    for name in ("val", "test"):
        held_out.to_csv(tmp_path / f"{name}.csv", index=False)
    fixed = {"val_path": str(tmp_path / "val.csv"), "test_path": str(tmp_path / "test.csv")}
    assert "zebracorn" not in datamodule(train, min_frequency=1, **fixed).tokenizer.get_vocab()
    mixed = pd.concat([pd.read_csv(train), held_out])
    mixed.to_csv(tmp_path / "mixed.csv", index=False)
    assert "zebracorn" in datamodule(tmp_path / "mixed.csv", min_frequency=1, **fixed).tokenizer.get_vocab()


def test_a_tokenizer_trained_in_another_process_is_identical(texts_csv):
    # DDP ranks each train their own, and eval.py retrains it to compare with the checkpoint's
    code = (
        "import pandas as pd; from imbalanced.data.text.tokenizer import train_tokenizer, pack; "
        f"t = pd.read_csv({str(texts_csv)!r})['text'].tolist(); print(pack(train_tokenizer(t, 300)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": ""},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    here = pack(train_tokenizer(pd.read_csv(texts_csv)["text"].tolist(), 300))
    assert result.stdout.strip() == here


def test_the_packed_tokenizer_gives_the_same_ids_and_truncates_at_max_length(texts_csv):
    texts = pd.read_csv(texts_csv)["text"].tolist()
    tokenizer = train_tokenizer(texts, 300)
    packed = pack(tokenizer)
    assert "${" not in packed  # the checkpoint loader refuses interpolations in hyperparameters
    again = unpack(packed)
    first, second = encode_texts(tokenizer, texts, 16, 0), encode_texts(again, texts, 16, 0)
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    assert max(len(a) for a in first) == 16 and min(len(a) for a in first) < 16
    assert [len(a) for a in encode_texts(tokenizer, ["\u200b"], 16, 0)] == [1]  # no token: one [UNK]


def test_a_local_tokenizer_file_is_used_as_it_is(texts_csv, tmp_path):
    own = train_tokenizer(["alpha beta gamma"] * 3 + pd.read_csv(texts_csv)["text"].tolist()[:50], 120)
    own.save(str(tmp_path / "tokenizer.json"))
    for given in (tmp_path / "tokenizer.json", tmp_path):  # the file, or the folder holding it
        module = datamodule(texts_csv, tokenizer=str(given))
        assert module.tokenizer.get_vocab() == own.get_vocab()
        assert module.backbone_inputs()["vocab_size"] == own.get_vocab_size()


def test_batches_are_padded_to_their_longest_text_on_both_backends():
    sequences = [np.arange(1, n + 1, dtype=np.int32) for n in (3, 9, 1, 5)]
    dataset = TokenBatchDataset.from_sequences(sequences, np.array([0, 1, 0, 1]), pad_id=7)
    ids, labels = dataset[torch.tensor([0, 2, 3])]
    assert ids.dtype == torch.long and ids.shape == (3, 5)  # 5: the longest of these three
    assert ids[1].tolist() == [1, 7, 7, 7, 7] and labels.tolist() == [0, 0, 1]
    per_sample = PadCollate(7)([TokenSequences(dataset)[i] for i in (0, 2, 3)])
    assert torch.equal(per_sample[0], ids) and torch.equal(per_sample[1], labels)


@pytest.mark.parametrize("class_aware", [False, True])
def test_length_buckets_regroup_the_draw_of_each_rank_without_changing_it(class_aware):
    generator = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 200, (1000,), generator=generator)
    labels = torch.cat([torch.zeros(900), torch.ones(90), torch.full((10,), 2)]).long()
    shares = []
    for rank in (0, 1):
        if class_aware:
            plan = ClassAwareBatchSampler(labels, 16, q=0.0, seed=3, rank=rank, world_size=2)
        else:
            plan = IndexBatchSampler(1000, 16, shuffle=True, seed=3, rank=rank, world_size=2)
        plan.set_epoch(2)
        drawn = plan.local_indices()
        bucketed = LengthBucketedBatchSampler(plan, lengths, pool_batches=8)
        bucketed.set_epoch(2)
        batches = list(bucketed)
        assert len(batches) == len(plan) == len(bucketed)
        # the same samples (and, class-aware, the same class frequencies), regrouped
        assert sorted(torch.cat(batches).tolist()) == sorted(drawn.tolist())
        spread = np.mean([float(lengths[b].max() - lengths[b].min()) for b in batches])
        unbucketed = np.mean([float(lengths[b].max() - lengths[b].min()) for b in plan])
        assert spread < unbucketed / 3
        shares.append(drawn)
    if not class_aware:  # DDP: the ranks' shares of one permutation are disjoint
        assert not set(shares[0].tolist()) & set(shares[1].tolist())
    again = LengthBucketedBatchSampler(plan, lengths, 8)
    again.set_epoch(2)
    assert all(torch.equal(a, b) for a, b in zip(again, batches, strict=True))  # seeded by epoch


@pytest.mark.parametrize("backbone", ["text_bag", "text_transformer"])
def test_backbones_ignore_padding(backbone):
    from imbalanced.models import TextBag, TextTransformer

    torch.manual_seed(0)
    model = (TextBag(50, 3, padding_id=0) if backbone == "text_bag" else TextTransformer(50, 3, 0, 32)).eval()
    ids = torch.tensor([[5, 6, 7, 0], [8, 9, 0, 0]])
    wider = torch.cat([ids, torch.zeros(2, 6, dtype=torch.long)], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(model(ids), model(wider))
        assert torch.isfinite(model(torch.zeros(1, 4, dtype=torch.long))).all()  # padding only
        assert not torch.allclose(model(ids[:1]), model(torch.tensor([[7, 6, 5, 0]])))  # order counts
