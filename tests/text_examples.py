"""Labelled texts made by the tests: support-ticket-like sentences of varied length, long-tailed.

Each class has its own keywords (some in several word forms, so subwords matter); every text mixes
a few of them with words all classes share, in 3 to 60 words, so batches hold texts of very
different lengths.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

KEYWORDS = {
    "billing": ["invoice", "invoices", "charged", "charge", "overcharged", "payment", "card", "bill"],
    "login": ["password", "login", "logging", "locked", "username", "reset", "signin", "twofactor"],
    "shipping": ["parcel", "delivery", "delivered", "courier", "tracking", "shipped", "address", "late"],
    "refund": ["refund", "refunded", "refunding", "return", "returned", "money", "back", "cancel"],
}
SHARED = "the a my i it is not please help thanks today order account again still why when was".split()


def make_texts(counts: Mapping[str, int], seed: int = 0) -> pd.DataFrame:
    """A frame with columns `text` and `label`, `counts[label]` rows each, shuffled."""
    rng = np.random.default_rng(seed)
    rows = []
    for label, count in counts.items():
        own = KEYWORDS[label]
        for _ in range(count):
            length = int(rng.integers(3, 61))
            words = [
                own[rng.integers(len(own))] if rng.random() < 0.35 else SHARED[rng.integers(len(SHARED))]
                for _ in range(length)
            ]
            rows.append((" ".join(words).capitalize() + ".", label))
    order = rng.permutation(len(rows))
    return pd.DataFrame([rows[i] for i in order], columns=["text", "label"])


def write_texts(path: Path, counts: Mapping[str, int], seed: int = 0) -> Path:
    """The texts as CSV, JSON Lines (.jsonl), Parquet (.parquet) or one text per line (.txt)."""
    frame = make_texts(counts, seed)
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    elif suffix == ".parquet":
        frame.to_parquet(path)
    elif suffix == ".txt":
        path.write_text("\n".join(frame["text"]) + "\n", encoding="utf-8")
    else:
        frame.to_csv(path, index=False)
    return path


def tiny_bert(folder: Path) -> Path:
    """A randomly initialized 1-layer BERT saved as a local model folder (config.json, safetensors)."""
    import transformers

    config = transformers.BertConfig(
        vocab_size=400, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
    )
    transformers.BertModel(config).save_pretrained(folder, safe_serialization=True)
    return folder
