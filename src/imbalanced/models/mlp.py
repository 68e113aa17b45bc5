"""A plain MLP backbone: features in, one logit per class out."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from imbalanced.errors import UserError

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}


class MLP(nn.Module):
    def __init__(
        self,
        in_features: int,
        num_classes: int,
        hidden_sizes: Sequence[int] = (256, 256),
        dropout: float = 0.0,
        activation: str = "relu",
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise UserError(
                f"model.backbone.activation={activation!r} is unknown; valid: {', '.join(ACTIVATIONS)}"
            )
        if any(int(h) < 1 for h in hidden_sizes):
            raise UserError(f"model.backbone.hidden_sizes={list(hidden_sizes)} must all be >= 1")
        if not 0.0 <= dropout < 1.0:
            raise UserError(f"model.backbone.dropout={dropout} must be in [0, 1)")
        layers: list[nn.Module] = []
        width = in_features
        for hidden in hidden_sizes:
            layers.append(nn.Linear(width, int(hidden)))
            if batch_norm:
                layers.append(nn.BatchNorm1d(int(hidden)))
            layers.append(ACTIVATIONS[activation]())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = int(hidden)
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(width, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))
