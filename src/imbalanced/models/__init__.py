from imbalanced.models.cosine import CosineMLP
from imbalanced.models.mlp import MLP
from imbalanced.models.resnet_cifar import CifarResNet
from imbalanced.models.small_cnn import SmallCNN

__all__ = ["MLP", "CosineMLP", "CifarResNet", "SmallCNN"]
