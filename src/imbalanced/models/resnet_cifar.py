"""The CIFAR ResNets of the long-tail papers (He et al. 2016, section 4.2; LDAM-DRW's resnet_cifar.py).

depth = 6n + 2: a 3x3 stem of 16 channels, three stages of n BasicBlocks with 16, 32 and 64
channels (the last two start with stride 2), global average pooling and the classifier head.
Shortcuts that change shape are "option A": subsample by 2 and zero-pad the new channels, no
parameters. ResNet-32 (n = 5) has 464,154 parameters with 10 classes and 3 input channels (0.46M).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from imbalanced.models.heads import classifier_head
from imbalanced.value_checks import check_int, fail


class PadShortcut(nn.Module):
    """Option A: x[:, :, ::2, ::2] with zero channels added on both sides (from `in_planes` to `planes`)."""

    def __init__(self, in_planes: int, planes: int) -> None:
        super().__init__()
        self.pad_before = (planes - in_planes) // 2
        self.pad_after = planes - in_planes - self.pad_before

    def forward(self, x: Tensor) -> Tensor:
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad_before, self.pad_after))


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        changes_shape = stride != 1 or in_planes != planes
        self.shortcut: nn.Module = PadShortcut(in_planes, planes) if changes_shape else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """`model=resnet32` (depth 32); `model.backbone.head=cosine` (or `model=resnet32_cosine`) for LDAM."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        depth: int = 32,
        head: str = "linear",
        widths: tuple[int, int, int] = (16, 32, 64),
    ) -> None:
        super().__init__()
        check_int("model.backbone.depth", depth, minimum=8)
        if (depth - 2) % 6:
            raise fail("model.backbone.depth", depth, "6n + 2 (20, 32, 44, 56, 110, ...)")
        check_int("model.backbone.in_channels", in_channels, minimum=1)
        blocks = (depth - 2) // 6
        widths = tuple(int(w) for w in widths)
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU()
        )
        stages, planes = [], widths[0]
        for index, width in enumerate(widths):
            layers = []
            for block in range(blocks):
                stride = 2 if index > 0 and block == 0 else 1
                layers.append(BasicBlock(planes, width, stride))
                planes = width
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = classifier_head(planes, num_classes, head)
        for module in self.modules():  # as the papers' code: Kaiming-normal convolutions and linear layers
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.pool(self.stages(self.stem(x))))
