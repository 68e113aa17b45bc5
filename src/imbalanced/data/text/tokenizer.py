"""Subword tokenization with Hugging Face `tokenizers` (the `text` extra): train, load, pack, encode.

By default a BPE tokenizer is trained on the training split's texts at setup (`data.vocab_size`,
`data.min_frequency`, `data.lowercase`). Plain BPE, because `tokenizers`' BPE trainer then gives the
same vocabulary in every process, which DDP ranks (each trains its own) and eval.py (it rebuilds the
data and compares the tokenizer) rely on. Its WordPiece trainer, and BPE with a continuing-subword
prefix (`##`) or an end-of-word suffix, number the pieces in hash-map order and break ties between
equally frequent merges differently from one process to the next (tests/test_text_tokenizer.py).
`data.tokenizer=PATH` uses a local tokenizer file instead (a `tokenizer.json`, or a folder holding
one, e.g. a Hugging Face model's); nothing is ever downloaded, and reading one runs no code (JSON).

The tokenizer travels in the checkpoint as zlib-compressed, base64-encoded JSON (`pack`): compact in
hparams.yaml, and free of the `${` that the checkpoint loader refuses in hyperparameters.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from imbalanced.errors import UserError

if TYPE_CHECKING:
    from tokenizers import Tokenizer

PAD, UNK = "[PAD]", "[UNK]"
# padding tokens of common tokenizer files, tried in order when the file sets no padding
PAD_TOKENS = (PAD, "<pad>", "<|padding|>", "<|pad|>")


def require_tokenizers() -> None:
    try:
        import tokenizers  # noqa: F401
    except ImportError:
        raise UserError("data=text needs the `tokenizers` package: pip install 'imbalanced[text]'") from None


def train_tokenizer(
    texts: Sequence[str], vocab_size: int, min_frequency: int = 2, lowercase: bool = True
) -> Tokenizer:
    """A BPE tokenizer learnt from `texts` (Unicode NFKC, optionally lowercased, split on spaces and
    punctuation); `[PAD]` is id 0 and `[UNK]` id 1."""
    require_tokenizers()
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token=UNK))
    steps = [normalizers.NFKC()] + ([normalizers.Lowercase()] if lowercase else [])
    tokenizer.normalizer = normalizers.Sequence(steps)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[PAD, UNK],
        limit_alphabet=1000,  # rare symbols (emoji, other scripts) become [UNK], not vocabulary
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer, length=len(texts))
    return tokenizer


def load_tokenizer(path: str | Path, setting: str = "data.tokenizer") -> Tokenizer:
    """A local tokenizer file (`tokenizer.json`) or a folder holding one; never a download."""
    require_tokenizers()
    from tokenizers import Tokenizer

    file = Path(str(path)).expanduser()
    if file.is_dir():
        file = file / "tokenizer.json"
    if not file.is_file():
        raise UserError(
            f"{setting}={path}: no tokenizer file there; give a tokenizer.json file (tokenizers' "
            "format) or a folder holding one, e.g. a Hugging Face model folder"
        )
    try:
        return Tokenizer.from_file(str(file))
    except Exception as error:  # noqa: BLE001 - tokenizers raises a bare Exception for bad JSON
        raise UserError(
            f"{setting}={path}: {file.name} is not a tokenizer file of the `tokenizers` library ({error})"
        ) from None


def pack(tokenizer: Tokenizer) -> str:
    """The tokenizer as compressed, base64-encoded JSON (what the checkpoint carries)."""
    return base64.b64encode(zlib.compress(tokenizer.to_str().encode("utf-8"), 9)).decode("ascii")


def unpack(packed: str) -> Tokenizer:
    require_tokenizers()
    from tokenizers import Tokenizer

    return Tokenizer.from_str(zlib.decompress(base64.b64decode(packed)).decode("utf-8"))


def padding_id(tokenizer: Tokenizer, source: str) -> int:
    """The id batches are padded with: the file's padding setting, else a known padding token."""
    if tokenizer.padding is not None:
        return int(tokenizer.padding["pad_id"])
    for token in PAD_TOKENS:
        found = tokenizer.token_to_id(token)
        if found is not None:
            return int(found)
    raise UserError(
        f"{source}: the tokenizer has no padding token ({', '.join(PAD_TOKENS)}); add one to its "
        "vocabulary, or let data=text train a tokenizer (leave data.tokenizer unset)"
    )


def encode_texts(
    tokenizer: Tokenizer, texts: Sequence[str], max_length: int, pad_id: int
) -> list[np.ndarray]:
    """Token ids of each text (int32), truncated to `max_length`, in one batched call of the Rust
    tokenizer. A text that gives no token (only characters the normalizer drops) becomes one
    unknown token (padding if the tokenizer has none), so every input keeps a row."""
    tokenizer.no_padding()  # padding is per batch, by the loader (dynamic padding)
    tokenizer.enable_truncation(max_length)
    encodings = tokenizer.encode_batch(list(texts), add_special_tokens=True)
    filler = _unknown_id(tokenizer, pad_id)
    return [np.asarray(encoding.ids if encoding.ids else [filler], dtype=np.int32) for encoding in encodings]


def _unknown_id(tokenizer: Tokenizer, default: int) -> int:
    for token in (getattr(tokenizer.model, "unk_token", None), UNK, "<unk>"):
        found = tokenizer.token_to_id(token) if token else None
        if found is not None:
            return int(found)
    return default
