"""The image backbones: ResNet-32's parameter count, the small CNN, torchvision architectures by name."""

from __future__ import annotations

import pytest
import torch

from imbalanced.errors import UserError
from imbalanced.models import CifarResNet, SmallCNN
from imbalanced.models.cosine import NormedLinear


def parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_resnet32_has_the_papers_0_46m_parameters():
    model = CifarResNet(in_channels=3, num_classes=10)
    assert parameters(model) == 464_154  # LDAM-DRW's resnet32(): 0.46M
    assert len(model.stages) == 3 and all(len(stage) == 5 for stage in model.stages)
    widths = [stage[-1].conv2.out_channels for stage in model.stages]
    assert widths == [16, 32, 64]
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    cosine = CifarResNet(in_channels=3, num_classes=10, head="cosine")
    assert isinstance(cosine.classifier, NormedLinear) and parameters(cosine) == 464_154 - 10  # no bias
    logits = cosine.eval()(torch.randn(4, 3, 32, 32))
    assert logits.abs().max() <= 1.0 + 1e-5  # cosines


def test_resnet_settings_are_checked():
    with pytest.raises(UserError, match=r"model.backbone.depth=30 is invalid; allowed: 6n \+ 2"):
        CifarResNet(3, 10, depth=30)
    with pytest.raises(UserError, match=r"model.backbone.head='softmax' is invalid"):
        CifarResNet(3, 10, head="softmax")


@pytest.mark.parametrize("size", [8, 28, 32])
def test_small_cnn_takes_small_images(size):
    assert SmallCNN(in_channels=1, num_classes=4)(torch.zeros(2, 1, size, size)).shape == (2, 4)


def test_torchvision_architectures_by_name_with_a_users_weights_file(tmp_path):
    torchvision = pytest.importorskip("torchvision")  # the `vision` extra (installed in CI)
    from imbalanced.models.torchvision_backbone import TorchvisionBackbone

    gray = TorchvisionBackbone(in_channels=1, num_classes=5, arch="resnet18")
    assert gray.eval()(torch.zeros(2, 1, 32, 32)).shape == (2, 5)
    pretrained = torchvision.models.resnet18(num_classes=1000).state_dict()
    torch.save(pretrained, tmp_path / "resnet18.pth")
    model = TorchvisionBackbone(
        in_channels=3, num_classes=5, arch="resnet18", weights=str(tmp_path / "resnet18.pth")
    )
    model.load_initial_weights()
    assert torch.equal(model.net.conv1.weight, pretrained["conv1.weight"])
    assert model.net.fc.weight.shape == (5, 512)  # the 1000-class head stays freshly initialized
    with pytest.raises(UserError, match=r"model.backbone.arch='resnet_18' is invalid; allowed: a torch"):
        TorchvisionBackbone(in_channels=3, num_classes=5, arch="resnet_18")
    torch.save({"conv1.weight": torch.zeros(1), "head.x": torch.zeros(1)}, tmp_path / "other.pth")
    other = TorchvisionBackbone(
        in_channels=3, num_classes=5, arch="resnet18", weights=str(tmp_path / "other.pth")
    )
    with pytest.raises(UserError, match=r"does not fit torchvision's architecture: 1 key"):
        other.load_initial_weights()
    (tmp_path / "resnet18.pth").unlink()  # a checkpoint's backbone is rebuilt without the file
    rebuilt = TorchvisionBackbone(
        in_channels=3, num_classes=5, arch="resnet18", weights=str(tmp_path / "resnet18.pth")
    )
    with pytest.raises(UserError, match=r"model.backbone.weights=.* is invalid; allowed: a path to an"):
        rebuilt.load_initial_weights()  # only training reads it
