from imbalanced.models.cosine import CosineMLP
from imbalanced.models.mlp import MLP

__all__ = ["MLP", "CosineMLP"]
