"""`model=text_bag`: a fastText-style bag of embeddings over tokens, character n-grams and bigrams.

The text is the mean of the embeddings of its tokens, of the hashed character n-grams of its words
(which the data appends to the token ids as ids `vocab_size + bucket`, data/text/char_ngrams.py;
fastText's subword features) and of its adjacent token pairs (bigrams, hashed into `bigram_buckets`
rows, as fastText's `-wordNgrams 2`), then a linear class head. Word order beyond pairs is ignored,
which costs little on short texts and makes a step cheap on a CPU (Joulin et al. 2017, "Bag of
Tricks for Efficient Text Classification"; Bojanowski et al. 2017 for the character n-grams).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from imbalanced.errors import UserError
from imbalanced.value_checks import check_int, check_number

BIGRAM_PRIME = 1_000_003  # mixes the first token into the pair's hash


class TextBag(nn.Module):
    """Token ids `(batch, length)`, padded with `padding_id` -> logits `(batch, num_classes)`."""

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        padding_id: int = 0,
        dim: int = 64,
        bigram_buckets: int = 32_768,
        dropout: float = 0.0,
        char_buckets: int = 0,
        char_ngrams: Sequence[int] | None = None,
    ) -> None:
        """`char_buckets` comes from the data (0: it adds no character n-grams). `char_ngrams` is
        the data's setting, which configs/data/text.yaml reads from this model's config; the bag
        itself does not use it (the n-gram ids arrive with the tokens)."""
        super().__init__()
        check_int("model.backbone.dim", dim, minimum=1)
        check_int("model.backbone.bigram_buckets", bigram_buckets, minimum=0)
        check_int("model.backbone.char_buckets", char_buckets, minimum=0)
        check_number("model.backbone.dropout", dropout, 0.0, 1.0, high_open=True)
        self.vocab_size = int(vocab_size)
        self.padding_id = int(padding_id)
        self.bigram_buckets = int(bigram_buckets)
        self.char_buckets = int(char_buckets)
        # one table: token rows first, then the character n-gram buckets, then the bigram buckets.
        # The padding row stays zero (no gradient reaches it), so a sum over a padded bag is the sum
        # over the text
        self.embedding = nn.Embedding(
            self.vocab_size + self.char_buckets + self.bigram_buckets, dim, padding_idx=self.padding_id
        )
        nn.init.uniform_(self.embedding.weight, -1.0 / dim, 1.0 / dim)  # fastText's initialisation
        with torch.no_grad():
            self.embedding.weight[self.padding_id].zero_()
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(dim, num_classes)

    def bag(self, ids: Tensor) -> Tensor:
        """The ids of each text's bag: its tokens and character n-grams, then its hashed bigrams
        (padding where none)."""
        if not self.bigram_buckets or ids.shape[1] < 2:
            return ids
        first, second = ids[:, :-1], ids[:, 1:]
        hashed = (first * BIGRAM_PRIME + second) % self.bigram_buckets + self.vocab_size + self.char_buckets
        # pairs of tokens only: the n-gram ids follow the tokens and are >= vocab_size
        tokens = (first < self.vocab_size) & (second < self.vocab_size)
        real = (first != self.padding_id) & (second != self.padding_id) & tokens
        return torch.cat([ids, torch.where(real, hashed, torch.full_like(hashed, self.padding_id))], dim=1)

    def forward(self, ids: Tensor) -> Tensor:
        bag = self.bag(ids)
        count = (bag != self.padding_id).sum(1, keepdim=True).clamp_min(1)
        # embedding_bag sums without making the (batch, length, dim) tensor of embedding + sum:
        # measured on a CPU, a training step 25% and an evaluation pass 7x faster
        total = F.embedding_bag(bag, self.embedding.weight, mode="sum", padding_idx=self.padding_id)
        mean = total / count
        return self.head(self.dropout(mean))


def refuse_char_ngrams(char_buckets: int, model: str) -> None:
    """For the text backbones that read tokens only: the data's character n-gram ids (above the
    vocabulary) would be read as tokens."""
    if char_buckets:
        raise UserError(
            f"data.char_ngrams adds character n-grams to the token ids, which only model=text_bag "
            f"reads; with model={model} set data.char_ngrams=null"
        )
