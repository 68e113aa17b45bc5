"""Long-tailed 8x8 digit images stored one `.npy` file per image, read per sample: data that is
neither a float matrix nor in memory, served by `DatasetDataModule` (standard DataLoaders, workers).

Labels are kept as a `targets` array beside the file paths, so the template counts the classes
without reading a single image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from fork_example.images import DigitImagesDataModule
from torch import Tensor
from torch.utils.data import Dataset

from imbalanced.data.dataset_datamodule import DatasetDataModule, DatasetSplits


class ImageFiles(Dataset):
    """`(uint8 image tensor, label)` per `.npy` file; counts the files it reads."""

    def __init__(self, paths: list[Path], targets: np.ndarray) -> None:
        self.paths = paths
        self.targets = targets

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return torch.from_numpy(np.load(self.paths[index])), int(self.targets[index])


class DigitFilesDataModule(DatasetDataModule):
    def __init__(self, root: str, imbalance_ratio: float = 10.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.root = Path(root)
        self.imbalance_ratio = float(imbalance_ratio)

    def load_datasets(self) -> DatasetSplits:
        source = DigitImagesDataModule(imbalance_ratio=self.imbalance_ratio, seed=self.seed).load_splits()
        datasets = {}
        for name in ("train", "val", "test"):
            images, labels = getattr(source, f"x_{name}"), getattr(source, f"y_{name}")
            paths = [self.root / name / f"{i:05d}.npy" for i in range(len(labels))]
            if not all(p.is_file() for p in paths):  # written once, then read per sample
                paths[0].parent.mkdir(parents=True, exist_ok=True)
                for path, image in zip(paths, images, strict=True):
                    np.save(path, image)
            datasets[name] = ImageFiles(paths, labels)
        return DatasetSplits(
            datasets["train"], datasets["val"], datasets["test"], class_names=source.class_names
        )

    # ---- the data-to-model contract: the CNN's input channels and a fixed 0..255 -> 0..1 scaling ----
    def backbone_inputs(self) -> dict[str, Any]:
        return {"in_channels": 1}

    def input_transform(self) -> dict[str, Any]:
        return {"_target_": "fork_example.images.ChannelNormalize", "channels": 1}

    def input_transform_state(self) -> dict[str, Tensor]:
        return {"mean": torch.zeros(1, 1, 1), "std": torch.full((1, 1, 1), 255.0)}
