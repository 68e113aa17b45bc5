"""Image datasets (CIFAR-LT, ...), their augmentation and normalization."""
