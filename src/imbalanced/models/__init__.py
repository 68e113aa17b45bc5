from imbalanced.models.mlp import MLP

__all__ = ["MLP"]
