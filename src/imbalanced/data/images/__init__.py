"""Image datamodules and their input preparation.

- `folder.py`: `data=image_folder`, a user's images as `ROOT/<class>/<image>`, separate
  train/val/test folders, or a CSV of `path,label`; decoded lazily by DataLoader workers.
- `digit_images.py`: `data=digits_images`, scikit-learn's bundled digits as 1x8x8 uint8 images
  (offline), long-tailed like `data=digits`.
- `normalize.py`: per-channel normalization the model runs before its backbone (fitted on the
  training split, saved in the checkpoint), shared by the image datamodules.
- `cifar.py` and the augmentation modules: CIFAR-10/100-LT (helper `cifar`).

This package imports nothing from torchvision at import time: torchvision is the `vision` extra.
"""
