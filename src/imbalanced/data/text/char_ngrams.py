"""Hashed character n-grams of each word (fastText's subword features), for `model=text_bag`.

Course titles or short remarks give a class a few dozen examples; a word seen once in training, or
never ("biochem" against "biochemistry"), still shares most of its character n-grams with words
that were seen. So each word of the text normalized by the tokenizer ("Bio-Chem" -> "bio", "-",
"chem"), is framed by boundary marks ("<bio>") and its n-grams of `low`..`high` characters are
hashed into `buckets` rows (CRC-32 of the UTF-8 bytes: the same ids in every process and on every
machine, unlike Python's `hash`). The text's n-gram ids are the concatenation over its first
`max_words` words.

Computed on the data side, at setup and by `read_inputs` alike (one function), with the tokenizer's
own normalizer; the settings are saved with the tokenizer in the checkpoint's input spec.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from tokenizers import Tokenizer

SEPARATOR = "\n"  # joins the texts for one normalizer call and one regular-expression pass
WORD = re.compile(r"\w+|[^\w\s]|\n")  # a word, one other symbol, or the separator


def word_ngrams(word: str, low: int, high: int, buckets: int) -> np.ndarray:
    """The hashed n-grams of one word, framed by boundary marks, shortest first."""
    text = f"<{word}>"  # n-grams of characters (not of UTF-8 bytes), hashed as UTF-8
    return np.fromiter(
        (
            zlib.crc32(text[i : i + n].encode()) % buckets
            for n in range(low, high + 1)
            for i in range(len(text) - n + 1)
        ),
        dtype=np.int64,
    )


def split_words(tokenizer: Tokenizer, texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """(words, text index of each word): every text normalized by the tokenizer's normalizer, then
    split into runs of letters and digits and single other symbols ("bio-chem." -> "bio", "-",
    "chem", "."), as a BERT-style pre-tokenizer does.

    One normalizer call and one regular-expression pass for all texts, joined by newlines (a text's
    own line breaks become spaces, which split words as they do): calling the `tokenizers`
    pre-tokenizer instead measured 4x slower than the tokenization itself. A normalizer that removes
    the newlines (e.g. BERT's, which turns them into spaces) falls back to one call per text."""
    cleaned = [t.replace(SEPARATOR, " ").replace("\r", " ") for t in texts]
    normalize = tokenizer.normalizer.normalize_str if tokenizer.normalizer is not None else str
    joined = normalize(SEPARATOR.join(cleaned))
    if joined.count(SEPARATOR) != len(texts) - 1:
        joined = SEPARATOR.join(normalize(t).replace(SEPARATOR, " ") for t in cleaned)
    pieces = WORD.findall(joined)
    marks = np.fromiter((p == SEPARATOR for p in pieces), dtype=bool, count=len(pieces))
    owners = np.cumsum(marks)[~marks]  # the text of a word: how many separators precede it
    return [p for p in pieces if p != SEPARATOR], owners


def char_ngram_ids(
    tokenizer: Tokenizer, texts: Sequence[str], low: int, high: int, buckets: int, max_words: int
) -> list[np.ndarray]:
    """The hashed character n-grams (0 .. buckets-1, int64) of each text's first `max_words` words."""
    words, owners = split_words(tokenizer, texts)
    if not words:
        return [np.zeros(0, dtype=np.int64) for _ in texts]
    # each distinct word is hashed once; its occurrences are gathered from one flat array
    index: dict[str, int] = {}
    inverse = np.fromiter((index.setdefault(w, len(index)) for w in words), dtype=np.int64, count=len(words))
    grams = [word_ngrams(w, low, high, buckets) for w in index]
    counts = np.fromiter((len(g) for g in grams), dtype=np.int64, count=len(grams))
    flat = np.concatenate(grams)
    starts = np.cumsum(counts) - counts
    first_word = np.searchsorted(owners, np.arange(len(texts)))  # owners ascend with the text order
    kept = np.arange(len(owners)) - first_word[owners] < max_words
    inverse, owners = inverse[kept], owners[kept]
    sizes = counts[inverse]
    within = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    ids = flat[np.repeat(starts[inverse], sizes) + within]
    per_text = np.bincount(owners, weights=sizes, minlength=len(texts)).astype(np.int64)
    return np.split(ids, np.cumsum(per_text)[:-1])
