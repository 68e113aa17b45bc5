"""Token sequences of different lengths: a fork's modality that is neither a table nor images.

A file holds one example per line, `label<TAB>token ids separated by spaces` (predict: the ids
alone). Sequences are served as they are and padded per batch by the datamodule's collate (dynamic
padding), in training, eval.py and predict.py alike; the backbone averages the embeddings of the
tokens that are not padding. Nothing in the template's core knows about any of this.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from imbalanced.data.contract import RawInputs
from imbalanced.data.dataset_datamodule import DatasetDataModule, DatasetSplits
from imbalanced.data.splitting import stratified_split
from imbalanced.errors import UserError

PAD = 0


class Sequences(Dataset):
    """`(int64 token ids, label)` per example; `targets` lets the template count classes."""

    def __init__(self, sequences: list[Tensor], targets: np.ndarray) -> None:
        self.sequences = sequences
        self.targets = targets

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self.sequences[index], int(self.targets[index])


def pad_batch(samples: list[tuple[Tensor, int]]) -> tuple[Tensor, Tensor]:
    """Pads a batch to its longest sequence (not to a global maximum)."""
    sequences = [sequence for sequence, _ in samples]
    padded = nn.utils.rnn.pad_sequence(sequences, batch_first=True, padding_value=PAD)
    return padded, torch.tensor([label for _, label in samples], dtype=torch.long)


def read_lines(path: str, setting: str, vocab_size: int, labelled: bool) -> tuple[list[Tensor], list[str]]:
    """Token id tensors and labels (empty when not `labelled`); one `UserError` naming the line."""
    file = Path(path)
    if not file.is_file():
        raise UserError(f"{setting}={path}: no such file")
    sequences, labels = [], []
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        label, _, text = line.partition("\t") if labelled else ("", "", line)
        try:
            ids = [int(token) for token in text.split()]
        except ValueError:
            raise UserError(
                f"{setting}={path}: line {number} holds a token that is not an integer id ({text[:40]!r})"
            ) from None
        if not ids or min(ids) < 1 or max(ids) >= vocab_size:
            raise UserError(f"{setting}={path}: line {number} needs 1 or more ids in 1..{vocab_size - 1}")
        sequences.append(torch.tensor(ids, dtype=torch.long))
        labels.append(label.strip())
    return sequences, labels


class TokenSequenceDataModule(DatasetDataModule):
    def __init__(
        self,
        path: str,
        vocab_size: int = 64,
        val_fraction: float = 0.2,
        test_fraction: float = 0.2,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.path = str(path)
        self.vocab_size = int(vocab_size)
        self.val_fraction, self.test_fraction = float(val_fraction), float(test_fraction)

    def load_datasets(self) -> DatasetSplits:
        sequences, names = read_lines(self.path, "data.path", self.vocab_size, labelled=True)
        class_names = sorted(set(names))
        labels = np.array([class_names.index(name) for name in names], dtype=np.int64)
        rows = np.arange(len(labels))
        train, _, val, _, test, _ = stratified_split(
            rows, labels, self.val_fraction, self.test_fraction, self.seed
        )
        split = {
            name: Sequences([sequences[i] for i in index], labels[index])
            for name, index in (("train", train), ("val", val), ("test", test))
        }
        return DatasetSplits(split["train"], split["val"], split["test"], class_names=class_names)

    def collate_fn(self, name: str) -> Any:
        return pad_batch

    # ---- the data-to-model contract ----------------------------------------------------------
    def backbone_inputs(self) -> dict[str, Any]:
        return {"vocab_size": self.vocab_size}

    def input_spec(self) -> dict[str, Any]:
        return {"vocab_size": self.vocab_size}

    @classmethod
    def read_inputs(
        cls,
        path: str,
        *,
        setting: str,
        config: Mapping[str, Any],
        spec: Mapping[str, Any],
        class_names: list[str],
        labelled: bool,
    ) -> RawInputs:
        sequences, names = read_lines(path, setting, int(spec["vocab_size"]), labelled)
        unknown = sorted(set(names) - set(class_names)) if labelled else []
        if unknown:
            raise UserError(f"{setting}={path} has class(es) {unknown} the model does not know")
        labels = np.array([class_names.index(n) for n in names], dtype=np.int64) if labelled else None
        targets = labels if labels is not None else np.zeros(len(sequences), dtype=np.int64)
        return RawInputs(
            Sequences(sequences, targets),
            labels=labels,
            columns={"length": [len(s) for s in sequences]},
            collate_fn=pad_batch,
        )


class MeanEmbedding(nn.Module):
    """The mean embedding of the tokens that are not padding, then a linear head."""

    def __init__(self, vocab_size: int, num_classes: int, dim: int = 32) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, dim, padding_idx=PAD)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, ids: Tensor) -> Tensor:
        mask = (ids != PAD).unsqueeze(-1).float()
        pooled = (self.embedding(ids) * mask).sum(1) / mask.sum(1).clamp_min(1.0)
        return self.head(pooled)


def write_examples(
    path: Path, counts: Mapping[str, int], vocab_size: int = 64, seed: int = 0, labelled: bool = True
) -> Path:
    """A long-tailed file: each class draws half its tokens from a few ids of its own, lengths 3..40."""
    rng = np.random.default_rng(seed)
    lines = []
    for index, (name, count) in enumerate(counts.items()):
        own = np.arange(1 + 4 * index, 5 + 4 * index)
        for _ in range(count):
            length = int(rng.integers(3, 41))
            noise = rng.integers(1, vocab_size, length)
            ids = np.where(rng.random(length) < 0.5, rng.choice(own, length), noise)
            text = " ".join(map(str, ids))
            lines.append(f"{name}\t{text}" if labelled else text)
    rng.shuffle(lines)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
