"""`model=text_transformer`: a small transformer encoder over token ids, built from torch alone.

Token and learnt position embeddings, `layers` pre-norm `nn.TransformerEncoderLayer`s that ignore
padding (`src_key_padding_mask`), then the mean of the non-padding positions (`pooling=mean`) or the
first position (`pooling=first`, for tokenizers that put a [CLS] token there) and a linear head.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from imbalanced.models.text_bag import refuse_char_ngrams
from imbalanced.value_checks import check_choice, check_int, check_number, fail

POOLINGS = ("mean", "first")


def masked_mean(states: Tensor, keep: Tensor) -> Tensor:
    """Mean over the positions where `keep` (batch, length) is true."""
    weights = keep.unsqueeze(-1).to(states.dtype)
    return (states * weights).sum(1) / weights.sum(1).clamp_min(1.0)


class TextTransformer(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        padding_id: int = 0,
        max_length: int = 256,
        dim: int = 128,
        heads: int = 4,
        layers: int = 2,
        feedforward: int = 256,
        dropout: float = 0.1,
        pooling: str = "mean",
        char_buckets: int = 0,
    ) -> None:
        super().__init__()
        refuse_char_ngrams(char_buckets, "text_transformer")
        check_int("model.backbone.dim", dim, minimum=1)
        check_int("model.backbone.heads", heads, minimum=1)
        if dim % heads:
            raise fail("model.backbone.heads", heads, f"a divisor of model.backbone.dim={dim}")
        check_int("model.backbone.layers", layers, minimum=1)
        check_int("model.backbone.feedforward", feedforward, minimum=1)
        check_number("model.backbone.dropout", dropout, 0.0, 1.0, high_open=True)
        check_choice("model.backbone.pooling", pooling, POOLINGS)
        self.padding_id = int(padding_id)
        self.max_length = int(max_length)
        self.pooling = pooling
        self.tokens = nn.Embedding(vocab_size, dim, padding_idx=self.padding_id)
        self.positions = nn.Embedding(self.max_length, dim)
        layer = nn.TransformerEncoderLayer(
            dim, heads, feedforward, dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, ids: Tensor) -> Tensor:
        ids = ids[:, : self.max_length]
        padding = ids == self.padding_id
        # a row of padding only would make attention's softmax NaN: let it attend to its first slot
        padding[:, 0] &= ~padding.all(dim=1)
        positions = torch.arange(ids.shape[1], device=ids.device)
        states = self.encoder(self.tokens(ids) + self.positions(positions), src_key_padding_mask=padding)
        states = self.norm(states)
        pooled = states[:, 0] if self.pooling == "first" else masked_mean(states, ~padding)
        return self.head(pooled)
