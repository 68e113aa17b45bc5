"""A PyTorch Lightning + Hydra template for classification on imbalanced data."""

__version__ = "0.1.0"
