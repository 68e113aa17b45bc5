from imbalanced.models.cosine import CosineMLP
from imbalanced.models.mlp import MLP
from imbalanced.models.resnet_cifar import CifarResNet
from imbalanced.models.small_cnn import SmallCNN
from imbalanced.models.text_bag import TextBag
from imbalanced.models.text_transformer import TextTransformer

__all__ = ["MLP", "CosineMLP", "CifarResNet", "SmallCNN", "TextBag", "TextTransformer"]
