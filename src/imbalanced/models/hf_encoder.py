"""`model=hf_encoder`: any local Hugging Face encoder (BERT, RoBERTa, DistilBERT, ...) with a class head.

`model.backbone.path` names a local model folder (`config.json` and `model.safetensors`); nothing is
downloaded (`local_files_only`), no code from the folder runs (`trust_remote_code=False`) and
weights are read from safetensors only (never a pickled `pytorch_model.bin`). The architecture is
built from `config.json`; the pretrained weights are loaded when training starts
(`load_initial_weights`), and checkpoints hold the trained weights, so eval.py and predict.py read
only the folder's `config.json`. Give the model's own tokenizer with `data.tokenizer=<the same
folder>`: its ids must be the ones the model was trained on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor, nn

from imbalanced.errors import UserError
from imbalanced.models.text_bag import refuse_char_ngrams
from imbalanced.models.text_transformer import masked_mean
from imbalanced.value_checks import check_choice, check_number

POOLINGS = ("first", "mean")
SETTING = "model.backbone.path"


def _transformers() -> Any:
    try:
        import transformers
    except ImportError:
        raise UserError("model=hf_encoder needs `transformers`: pip install 'imbalanced[text]'") from None
    return transformers


def _model_folder(path: str | None) -> Path:
    if not path or str(path) == "???":
        raise UserError(f"{SETTING} is not set; give a local Hugging Face model folder: {SETTING}=DIR")
    folder = Path(str(path)).expanduser()
    if not (folder / "config.json").is_file():
        raise UserError(f"{SETTING}={path}: not a Hugging Face model folder (no config.json in it)")
    return folder


class HFEncoder(nn.Module):
    def __init__(
        self,
        path: str | None,
        num_classes: int,
        vocab_size: int | None = None,
        padding_id: int = 0,
        max_length: int | None = None,
        pooling: str = "first",
        dropout: float = 0.1,
        char_buckets: int = 0,
    ) -> None:
        super().__init__()
        refuse_char_ngrams(char_buckets, "hf_encoder")
        check_choice("model.backbone.pooling", pooling, POOLINGS)
        check_number("model.backbone.dropout", dropout, 0.0, 1.0, high_open=True)
        transformers = _transformers()
        self.folder = _model_folder(path)
        try:
            config = transformers.AutoConfig.from_pretrained(
                self.folder, local_files_only=True, trust_remote_code=False
            )
            self.encoder = transformers.AutoModel.from_config(config, trust_remote_code=False)
        except (OSError, ValueError) as error:
            raise UserError(
                f"{SETTING}={path}: cannot build the model from its config.json ({error})"
            ) from None
        model_vocab = int(getattr(config, "vocab_size", 0) or 0)
        if vocab_size is not None and model_vocab and vocab_size > model_vocab:
            raise UserError(
                f"the tokenizer has {vocab_size} ids but the model at {SETTING}={path} embeds only "
                f"{model_vocab}; give the model's own tokenizer: data.tokenizer={path}"
            )
        positions = getattr(config, "max_position_embeddings", None)
        if max_length is not None and positions and max_length > positions:
            raise UserError(
                f"data.max_length={max_length} is invalid for {SETTING}={path}; allowed: at most "
                f"its max_position_embeddings={positions}"
            )
        self.padding_id = int(padding_id)
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(int(config.hidden_size), num_classes)

    def load_initial_weights(self) -> None:
        """The folder's pretrained weights (safetensors), at the start of training."""
        transformers = _transformers()
        try:
            pretrained = transformers.AutoModel.from_pretrained(
                self.folder, local_files_only=True, use_safetensors=True, trust_remote_code=False
            )
        except (OSError, ValueError) as error:
            raise UserError(
                f"{SETTING}={self.folder}: cannot load its weights from model.safetensors ({error})"
            ) from None
        missing, unexpected = self.encoder.load_state_dict(pretrained.state_dict(), strict=False)
        if missing or unexpected:
            raise UserError(
                f"{SETTING}={self.folder}: its weights do not fit its config.json "
                f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
            )

    def forward(self, ids: Tensor) -> Tensor:
        keep = ids != self.padding_id
        states = self.encoder(input_ids=ids, attention_mask=keep.long()).last_hidden_state
        pooled = states[:, 0] if self.pooling == "first" else masked_mean(states, keep)
        return self.head(self.dropout(pooled))
