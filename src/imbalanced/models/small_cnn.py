"""`model=small_cnn`: a small CNN for small images (8x8 digits, 28x28 MNIST-like, 32x32).

Stages of two 3x3 convolutions (BatchNorm, ReLU), 2x2 max pooling between stages, global average
pooling, dropout and the classifier head. Any input size of at least 2^(stages-1) pixels works.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from imbalanced.models.heads import classifier_head
from imbalanced.value_checks import check_int, check_number, fail, is_number


class SmallCNN(nn.Module):
    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        channels: Sequence[int] = (32, 64),
        dropout: float = 0.0,
        head: str = "linear",
    ) -> None:
        super().__init__()
        check_int("model.backbone.in_channels", in_channels, minimum=1)
        if (
            isinstance(channels, (str, bytes))
            or not channels
            or not all(is_number(c) and float(c) == int(c) and c >= 1 for c in channels)
        ):
            raise fail(
                "model.backbone.channels",
                list(channels) if channels else channels,
                "a non-empty list of integers >= 1, e.g. [32,64]",
            )
        check_number("model.backbone.dropout", dropout, 0.0, 1.0, high_open=True)
        layers: list[nn.Module] = []
        width = in_channels
        for index, out in enumerate(int(c) for c in channels):
            if index:
                layers.append(nn.MaxPool2d(2))
            for _ in range(2):
                layers += [nn.Conv2d(width, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU()]
                width = out
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        self.features = nn.Sequential(*layers)
        self.classifier = classifier_head(width, num_classes, head)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))
