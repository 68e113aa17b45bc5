"""A plain MLP backbone: features in (images flattened to their pixels), one logit per class out."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from imbalanced.value_checks import check_choice, check_number, fail, is_number

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
        check_choice("model.backbone.activation", activation, ACTIVATIONS)
        if isinstance(hidden_sizes, (str, bytes)) or not all(
            is_number(h) and float(h) == int(h) and h >= 1 for h in hidden_sizes
        ):
            raise fail(
                "model.backbone.hidden_sizes", list(hidden_sizes), "a list of integers >= 1, e.g. [256,256]"
            )
        check_number("model.backbone.dropout", dropout, 0.0, 1.0, high_open=True)
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
        return self.classifier(self.features(x.flatten(1)))  # images: their pixels as features
