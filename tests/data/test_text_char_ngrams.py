"""data=text's hashed character n-grams (model=text_bag's subword features): what they are, that the
batched computation matches a plain per-word one, and that the checkpoint's spec reproduces them."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import torch
from text_examples import write_texts

pytest.importorskip("tokenizers", reason="data=text needs the text extra: pip install 'imbalanced[text]'")

from imbalanced.data.text.char_ngrams import char_ngram_ids, split_words, word_ngrams  # noqa: E402
from imbalanced.data.text.text_datamodule import TextDataModule, encode_inputs  # noqa: E402
from imbalanced.data.text.tokenizer import train_tokenizer, unpack  # noqa: E402
from imbalanced.errors import UserError  # noqa: E402

TEXTS = ["Intro to Bio-Chem.", "  ", "Café\nlatte, CAFÉ", "x"]


def plain(texts: list[str], low: int, high: int, buckets: int, max_words: int = 99) -> list[list[int]]:
    """The n-grams written out: lowercase words split at spaces and punctuation, framed by < and >."""
    import re

    out = []
    for text in texts:
        words = re.findall(r"\w+|[^\w\s]", text.lower())[:max_words]
        out.append(
            [
                zlib.crc32(f"<{w}>"[i : i + n].encode()) % buckets
                for w in words
                for n in range(low, high + 1)
                for i in range(len(w) + 2 - n + 1)
            ]
        )
    return out


def test_char_ngrams_are_each_words_framed_ngrams_hashed_the_same_in_every_process():
    tokenizer = train_tokenizer(TEXTS * 3, 100)
    words = ["intro", "to", "bio", "-", "chem", ".", "café", "latte", ",", "café", "x"]
    found, owners = split_words(tokenizer, TEXTS)
    assert found == words and owners.tolist() == [0] * 6 + [2] * 4 + [3]
    got = char_ngram_ids(tokenizer, TEXTS, 3, 5, 1000, max_words=256)
    assert [g.tolist() for g in got] == plain(TEXTS, 3, 5, 1000)
    assert len(got[1]) == 0 and len(got[3]) == 1  # a blank text has none; "<x>" is one 3-gram
    # CRC-32 of "<to": a fixed number, not Python's per-process string hash
    assert word_ngrams("to", 3, 3, 2**32).tolist() == [zlib.crc32(b"<to"), zlib.crc32(b"to>")]
    capped = char_ngram_ids(tokenizer, TEXTS, 3, 5, 1000, max_words=2)
    assert [g.tolist() for g in capped] == plain(TEXTS, 3, 5, 1000, max_words=2)


def test_a_normalizer_that_drops_newlines_gives_the_same_ngrams_text_by_text():
    from tokenizers import normalizers

    tokenizer = train_tokenizer(TEXTS * 3, 100)
    expected = [g.tolist() for g in char_ngram_ids(tokenizer, TEXTS, 2, 4, 97, 256)]
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=False)
    assert [g.tolist() for g in char_ngram_ids(tokenizer, TEXTS, 2, 4, 97, 256)] == expected


def test_the_ngrams_follow_the_tokens_as_ids_above_the_vocabulary_and_the_spec_reproduces_them(tmp_path):
    path = write_texts(tmp_path / "tickets.csv", {"billing": 60, "login": 30, "refund": 20})
    module = TextDataModule(
        path=str(path), text="text", target="label", vocab_size=200, char_ngrams=[3, 5], char_buckets=512
    )
    module.setup("fit")
    vocab = module.tokenizer.get_vocab_size()
    assert module.backbone_inputs()["char_buckets"] == 512
    spec = module.input_spec()["text"]
    assert spec["char_ngrams"] == [3, 5] and spec["char_buckets"] == 512
    train = module.batch_dataset("train")
    row = train.sequence(0)
    tokens = int((row < vocab).sum())
    assert (row[:tokens] < vocab).all() and (row[tokens:] >= vocab).all() and (row < vocab + 512).all()
    # predict time: the checkpoint's spec alone (tokenizer, n-gram sizes, buckets) gives the same ids
    texts = ["Refund my card twice", "cannot log in"]
    again = encode_inputs(unpack(spec["tokenizer"]), texts, spec)
    here = encode_inputs(module.tokenizer, texts, module._encoding())
    assert all(np.array_equal(a, b) for a, b in zip(again, here, strict=True))
    assert len(again[0]) > len(encode_inputs(module.tokenizer, texts, {**spec, "char_ngrams": None})[0])


def test_the_bag_pairs_tokens_only_and_reads_the_ngram_rows():
    from imbalanced.models import TextBag

    torch.manual_seed(0)
    model = TextBag(50, 3, padding_id=0, dim=8, bigram_buckets=64, char_buckets=16).eval()
    assert model.embedding.num_embeddings == 50 + 16 + 64
    bag = model.bag(torch.tensor([[5, 6, 50 + 3, 50 + 9, 0]]))
    pairs = bag[0, 5:]
    assert (pairs[0] >= 66) and (pairs[1:] == 0).all()  # (5, 6) only: no pair with an n-gram or padding
    with torch.no_grad():
        assert not torch.allclose(model(torch.tensor([[5, 6, 53]])), model(torch.tensor([[5, 6, 54]])))


@pytest.mark.parametrize(
    ("model", "expected"), [("text_bag", ([3, 5], 32768)), ("text_transformer", (None, 0))]
)
def test_the_ngrams_are_on_with_the_bag_only(compose_cfg, model, expected):
    from omegaconf import OmegaConf

    cfg = compose_cfg("data=text", f"model={model}")
    data = OmegaConf.to_container(cfg.data, resolve=True)
    assert (data["char_ngrams"], data["char_buckets"]) == expected


@pytest.mark.parametrize("sizes", [[3], [5, 3], ["a", 4], "3,5"])
def test_bad_ngram_sizes_are_refused(sizes, tmp_path):
    with pytest.raises(UserError, match="data.char_ngrams"):
        TextDataModule(path=None, char_ngrams=sizes, char_buckets=8)


def test_ngrams_asked_of_a_token_only_backbone_name_the_setting_to_drop(compose_cfg, tmp_path):
    from imbalanced.from_config import build_datamodule

    path = write_texts(tmp_path / "texts.csv", {"billing": 20, "login": 5})
    cfg = compose_cfg("data=text", f"data.path={path}", "model=text_transformer", "data.char_ngrams=[3,5]")
    with pytest.raises(UserError, match=r"needs data.char_buckets >= 1.*set data.char_ngrams=null"):
        build_datamodule(cfg)


def test_the_token_only_backbones_refuse_the_ngram_ids():
    from imbalanced.models import TextTransformer

    with pytest.raises(UserError, match="only model=text_bag reads; with model=text_transformer"):
        TextTransformer(50, 3, char_buckets=8)
