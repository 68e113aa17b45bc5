"""`data=text`: a user's file of labelled texts, tokenized and served in batches of varied length.

`python train.py data=text data.path=FILE data.text=COLUMN data.target=COLUMN`

- The file: CSV, TSV, Parquet or JSON Lines (data/text/reading.py); `data.text` names the text
  column, `data.target` the label column (strings or integers, as for tables).
- Splits as for tables: `data.val_path` / `data.test_path` give fixed files, the rest is split off
  `data.path`, stratified and seeded, with the split floor `data.min_train_rows`.
- Tokens: a BPE tokenizer trained on the training split's texts at setup, or `data.tokenizer=PATH`
  (data/text/tokenizer.py); texts longer than `data.max_length` tokens are truncated. The
  tokenizer is saved in the checkpoint's input spec, so eval.py and predict.py read new texts with
  the very same ids and need nothing else.
- Batches (data/text/batches.py): padded to their longest text; training batches grouped by length
  within pools of `data.bucket_batches` batches (0: no grouping), after the sampler's draw.
- Character n-grams (`data.char_ngrams`, `data.char_buckets`; data/text/char_ngrams.py): hashed
  n-grams of each word, appended to the text's token ids as ids `vocab_size + bucket`. Set by
  `model=text_bag` (configs/model/text_bag.yaml; data/text.yaml reads them from there), so the other
  backbones get tokens only.
- The backbone gets `vocab_size`, `padding_id`, `max_length` and `char_buckets` (`backbone_inputs`):
  `model=text_bag` (the default with data=text), `text_transformer`, `hf_encoder`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import OmegaConf
from torch import Tensor
from torch.utils.data import Dataset

from imbalanced.data.class_statistics import ClassStatistics
from imbalanced.data.contract import RawInputs
from imbalanced.data.datamodule import SPLITS, LoaderDataModule
from imbalanced.data.fingerprint import split_fingerprint
from imbalanced.data.in_memory_batches import IndexBatchSampler, TensorBatchDataset, place_dataset
from imbalanced.data.splitting import check_fraction, check_fractions, check_min_train_rows, split_file_rows
from imbalanced.data.tables.feature_table import carried_columns, column_names
from imbalanced.data.tables.table_files import class_names_of, encode_labels, require_target
from imbalanced.data.text.batches import (
    LengthBucketedBatchSampler,
    PadCollate,
    TokenBatchDataset,
    TokenSequences,
)
from imbalanced.data.text.char_ngrams import char_ngram_ids
from imbalanced.data.text.reading import LINE_SUFFIXES, read_lines, read_text_table, text_column
from imbalanced.data.text.tokenizer import (
    encode_texts,
    load_tokenizer,
    pack,
    padding_id,
    require_tokenizers,
    train_tokenizer,
    unpack,
)
from imbalanced.errors import UserError
from imbalanced.value_checks import check_file, check_int

SPEC_KEY = "text"


class TextDataModule(LoaderDataModule):
    can_refit = True  # the splits are in memory: validation rows can join the training rows
    # refit_with_validation=auto: a fresh model trains on training + validation rows, up to this many
    # training texts (as for tables). Measured on benchmarks/text.py's sets, where the validation
    # split holds 15% of classes with 15 to 136 texts (docs/text.md)
    refit_max_rows = 10_000

    def __init__(
        self,
        path: str | None = None,
        text: str | None = None,
        target: str | None = None,
        val_path: str | None = None,
        test_path: str | None = None,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        min_train_rows: int = 20,
        id: str | Sequence[str] | None = None,  # the config key users write: data.id=COL
        tokenizer: str | None = None,
        vocab_size: int = 8000,
        min_frequency: int = 2,
        lowercase: bool = True,
        max_length: int = 256,
        char_ngrams: Sequence[int] | None = None,
        char_buckets: int = 0,
        bucket_batches: int = 50,
        batch_size: int = 64,
        eval_batch_size: int = 512,
        class_weights: Mapping[str, Any] | None = None,
        seed: int = 0,
        sampler: Mapping[str, Any] | None = None,
        on_device: bool = False,
        backend: str = "in_memory",
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
    ) -> None:
        super().__init__(
            batch_size, eval_batch_size, seed, sampler, backend, num_workers, pin_memory, persistent_workers
        )
        for key, value in (("path", path), ("val_path", val_path), ("test_path", test_path)):
            if value:  # null: data.path is required at setup; the others are optional
                check_file(f"data.{key}", value)
        self.path = path
        self.text = None if text is None else str(text)
        self.target = None if target is None else str(target)
        self.val_path = val_path or None
        self.test_path = test_path or None
        self.val_fraction, self.test_fraction = float(val_fraction), float(test_fraction)
        self.automatic = {
            name: fraction
            for name, fraction, fixed in (
                ("val", self.val_fraction, self.val_path),
                ("test", self.test_fraction, self.test_path),
            )
            if fixed is None
        }
        if len(self.automatic) == 2:
            check_fractions(self.val_fraction, self.test_fraction)
        for name, fraction in self.automatic.items():
            check_fraction(f"data.{name}_fraction", fraction)
        self.min_train_rows = check_min_train_rows(min_train_rows)
        self.id_columns = column_names(id)
        self.tokenizer_path = tokenizer or None
        self.vocab_size = check_int("data.vocab_size", vocab_size, minimum=16)
        self.min_frequency = check_int("data.min_frequency", min_frequency, minimum=1)
        self.lowercase = bool(lowercase)
        self.max_length = check_int("data.max_length", max_length, minimum=1)
        self.char_ngrams = check_char_ngrams(char_ngrams, char_buckets)
        self.char_buckets = int(char_buckets) if self.char_ngrams else 0
        self.bucket_batches = check_int("data.bucket_batches", bucket_batches, minimum=0)
        if on_device and self.backend != "in_memory":
            raise UserError("data.on_device=true needs data.backend=in_memory")
        self.on_device = bool(on_device)
        weights = class_weights or {"strategy": "none"}
        if OmegaConf.is_config(weights):  # Hydra hands over DictConfig values
            weights = OmegaConf.to_container(weights, resolve=True)
        self.weight_settings = dict(weights)
        self.class_statistics: ClassStatistics | None = None
        self._datasets: dict[str, TokenBatchDataset] = {}
        self._class_names: list[str] | None = None
        self.tokenizer: Any = None
        self.pad_id = 0

    # ---- setup --------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self._class_names is not None:  # idempotent: train.py calls it before trainer.fit does
            return
        require_tokenizers()
        texts, labels, class_names = self._read_pool()
        train, val, test = split_file_rows(
            labels, class_names, self.automatic, self.seed, self.min_train_rows, f"data.path={self.path}"
        )
        split_texts = {"train": [texts[i] for i in train]}
        split_labels = {"train": labels[train]}
        for name, rows in (("val", val), ("test", test)):
            if rows is None:
                split_texts[name], split_labels[name] = self._read_fixed(name, class_names)
            else:
                split_texts[name], split_labels[name] = [texts[i] for i in rows], labels[rows]

        if self.tokenizer_path:
            self.tokenizer = load_tokenizer(self.tokenizer_path)
        else:  # learnt from the training split only, like every fitted input preparation
            self.tokenizer = train_tokenizer(
                split_texts["train"], self.vocab_size, self.min_frequency, self.lowercase
            )
        source = f"data.tokenizer={self.tokenizer_path}" if self.tokenizer_path else "data=text"
        self.pad_id = padding_id(self.tokenizer, source)
        self._datasets = {
            name: TokenBatchDataset.from_sequences(
                encode_inputs(self.tokenizer, split_texts[name], self._encoding()),
                split_labels[name],
                self.pad_id,
            )
            for name in SPLITS
        }
        self.data_fingerprint = split_fingerprint(
            SimpleNamespace(
                **{f"x_{n}": np.array(split_texts[n], dtype=object) for n in SPLITS},
                **{f"y_{n}": split_labels[n] for n in SPLITS},
            )
        )
        self.class_statistics = ClassStatistics.from_labels(
            split_labels["train"], class_names, self.weight_settings
        )
        self._class_names = class_names

    def _read_pool(self) -> tuple[list[str], np.ndarray, list[str]]:
        """Texts, class indices and class names of data.path."""
        frame = read_text_table(self.path, "data.path")
        texts = text_column(frame, self.text, "data.path", str(self.path))
        column = require_target(frame, self.target, "data.path", str(self.path))
        source = f"data.path={self.path} (column {self.target!r})"
        class_names = class_names_of(column, source)
        if len(class_names) < 2:
            raise UserError(
                f"{source}: the label column has only one class {class_names}; a classifier needs "
                "at least 2 classes"
            )
        unknown = [c for c in self.id_columns if c not in frame.columns]
        if unknown:
            raise UserError(f"data.id names column(s) {unknown} that data.path={self.path} lacks")
        return texts, encode_labels(column, class_names, "data.path", str(self.path)), class_names

    def _read_fixed(self, name: str, class_names: list[str]) -> tuple[list[str], np.ndarray]:
        setting, path = f"data.{name}_path", str(getattr(self, f"{name}_path"))
        frame = read_text_table(path, setting)
        texts = text_column(frame, self.text, setting, path)
        labels = encode_labels(require_target(frame, self.target, setting, path), class_names, setting, path)
        return texts, labels

    def merge_validation_into_training(self) -> None:
        """Train on training + validation rows from now on (refit_with_validation=true); the
        tokenizer stays the one learnt from the training split, which the checkpoint carries."""
        self._require()
        self._datasets["train"] = self._datasets["train"].concatenate(self._datasets["val"])
        self.class_statistics = ClassStatistics.from_labels(
            self._datasets["train"].labels.numpy(), self.class_names, self.weight_settings
        )

    def _require(self) -> list[str]:
        if self._class_names is None:
            raise RuntimeError("call datamodule.setup() first")
        return self._class_names

    @property
    def num_classes(self) -> int:
        return len(self._require())

    @property
    def class_names(self) -> list[str]:
        return list(self._require())

    # ---- what LoaderDataModule serves ----------------------------------------------------
    def split_labels(self, name: str) -> Tensor:
        self._require()
        return self._datasets[name].labels

    def batch_dataset(self, name: str) -> TensorBatchDataset:
        self._require()
        dataset = self._datasets[name] = place_dataset(self._datasets[name], self.trainer, self.on_device)
        return dataset

    def split_dataset(self, name: str) -> Dataset:
        self._require()
        return TokenSequences(self._datasets[name])

    def collate_fn(self, name: str) -> PadCollate:
        return PadCollate(self.pad_id)

    def batch_plan(self, name: str, train: bool) -> IndexBatchSampler:
        """The base plan (shuffled or class-aware, this rank's share); training batches grouped by
        length (data/text/batches.py)."""
        plan = super().batch_plan(name, train)
        if not train or not self.bucket_batches:
            return plan
        return LengthBucketedBatchSampler(plan, self._datasets[name].lengths, self.bucket_batches)

    # ---- the data-to-model contract ------------------------------------------------------
    def _encoding(self) -> dict[str, Any]:
        """How texts become ids, besides the tokenizer: the same at setup and in `read_inputs`."""
        return {
            "max_length": int(self.max_length),
            "padding_id": int(self.pad_id),
            "char_ngrams": list(self.char_ngrams) if self.char_ngrams else None,
            "char_buckets": self.char_buckets,
        }

    def backbone_inputs(self) -> dict[str, Any]:
        self._require()
        return {
            "vocab_size": int(self.tokenizer.get_vocab_size()),
            "padding_id": int(self.pad_id),
            "max_length": int(self.max_length),
            "char_buckets": self.char_buckets,
        }

    def input_spec(self) -> dict[str, Any]:
        """The tokenizer, the truncation length and the character n-grams: eval.py and predict.py
        encode new texts with them."""
        self._require()
        return {SPEC_KEY: {"tokenizer": pack(self.tokenizer), **self._encoding()}}

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
        """A file with the text column (`data.text`; CSV, TSV, Parquet, JSON Lines), with the label
        column `data.target` when `labelled` (eval.py), or a .txt file with one text per line
        (predict.py). Carried into predictions.csv: the id column(s) `data.id` and, with
        `+data.keep_columns=true` (or a list), the file's columns."""
        saved = spec.get(SPEC_KEY)
        if not saved:
            raise UserError(f"{setting}={path}: this checkpoint holds no tokenizer, so it cannot read texts")
        columns: dict[str, list[Any]] = {}
        if str(path).lower().endswith(LINE_SUFFIXES):
            if labelled:
                raise UserError(
                    f"{setting}={path}: a .txt file (one text per line) holds no labels to evaluate "
                    f"against; give a .csv/.jsonl/.parquet file with the columns {config.get('text')!r} "
                    f"and {config.get('target')!r}"
                )
            texts = read_lines(path, setting)
            labels = None
        else:
            frame = read_text_table(path, setting)
            texts = text_column(frame, config.get("text"), setting, path)
            labels = (
                encode_labels(
                    require_target(frame, config.get("target"), setting, path), class_names, setting, path
                )
                if labelled
                else None
            )
            kept = carried_columns(
                frame, column_names(config.get("id")), config.get("keep_columns"), setting, path
            )
            columns = {c: _plain(frame[c]) for c in kept}
        sequences = encode_inputs(unpack(saved["tokenizer"]), texts, saved)
        targets = labels if labels is not None else np.zeros(len(texts), dtype=np.int64)
        return RawInputs(
            TokenBatchDataset.from_sequences(sequences, targets, int(saved["padding_id"])),
            labels=labels,
            columns=columns,
            files=[str(path)],
        )


def check_char_ngrams(sizes: Sequence[int] | None, buckets: int) -> tuple[int, int] | None:
    """`data.char_ngrams` ([shortest, longest] characters, or null) with `data.char_buckets`."""
    if sizes is None or (not isinstance(sizes, str) and len(sizes) == 0):
        return None
    if OmegaConf.is_config(sizes):
        sizes = OmegaConf.to_container(sizes)
    if isinstance(sizes, str) or len(sizes) != 2 or not all(isinstance(n, int) for n in sizes):
        raise UserError(
            f"data.char_ngrams={sizes}: give [shortest, longest] characters, e.g. [3, 5], or null"
        )
    low = check_int("data.char_ngrams[0]", sizes[0], minimum=1)
    high = check_int("data.char_ngrams[1]", sizes[1], minimum=low)
    if buckets == 0:  # what configs/data/text.yaml resolves to under a backbone without n-grams
        raise UserError(
            f"data.char_ngrams=[{low}, {high}] needs data.char_buckets >= 1, which model=text_bag "
            "sets (model.backbone.char_buckets); only model=text_bag reads character n-grams: with "
            "another model set data.char_ngrams=null"
        )
    check_int("data.char_buckets", buckets, minimum=1)
    return low, high


def encode_inputs(tokenizer: Any, texts: Sequence[str], encoding: Mapping[str, Any]) -> list[np.ndarray]:
    """Each text's token ids, then (with `char_ngrams`) its hashed character n-grams as ids
    `vocab_size + bucket`, which no token has: the bag tells them apart by value."""
    pad = int(encoding["padding_id"])
    tokens = encode_texts(tokenizer, texts, int(encoding["max_length"]), pad)
    sizes = encoding.get("char_ngrams")  # absent from checkpoints saved before n-grams existed
    if not sizes:
        return tokens
    low, high = (int(n) for n in sizes)
    grams = char_ngram_ids(
        tokenizer, texts, low, high, int(encoding["char_buckets"]), int(encoding["max_length"])
    )
    offset = tokenizer.get_vocab_size()
    return [np.concatenate([t, (g + offset).astype(np.int32)]) for t, g in zip(tokens, grams, strict=True)]


def _plain(column: pd.Series) -> list[Any]:
    return column.tolist()
