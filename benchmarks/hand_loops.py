"""Hand-written PyTorch baselines a user would write instead of the template, and the template runner.

The image loop is what a new user types: torchvision `ImageFolder` + `DataLoader(shuffle=True)`, the
template's small_cnn architecture, AdamW, cross entropy (optionally with scikit-learn's balanced
weights or a logit adjustment), `model.eval()` on the test folder after the last epoch. Every place
where the template's path may differ is an argument, so parity.py can switch them one at a time.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

# a shared 2-core machine: one thread per process keeps runs comparable and the machine usable
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)

QUIET = ["~callbacks.progress_bar", "+trainer.enable_progress_bar=false", "~logger"]


@dataclass(frozen=True)
class LoopSettings:
    """One hand-written run. Defaults: what torchvision's ImageFolder gives (RGB, native size, [0, 1])."""

    loss: str = "weighted_ce"  # ce | weighted_ce | logit_adjusted
    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-4
    size: int | None = None  # None: the images' own size; N: resized to N x N (bilinear)
    channels: int = 3  # ImageFolder's loader converts to RGB
    normalize: bool = False  # True: per-channel mean/std of the training images
    crop_padding: int = 0  # RandomCrop(size, padding) per training image
    channels_cnn: tuple[int, ...] = (32, 64)


def balanced_weights(labels: Tensor, classes: int) -> Tensor:
    """scikit-learn's compute_class_weight("balanced"): N / (C * n_c)."""
    counts = torch.bincount(labels, minlength=classes).double()
    return (len(labels) / (classes * counts)).float()


def read_folder(folder: Path, size: int | None, channels: int) -> tuple[Tensor, Tensor, list[str]]:
    """uint8 (N, C, H, W) images and labels through torchvision's ImageFolder (decoded once)."""
    from torchvision import datasets, transforms

    steps: list[Any] = []
    if channels == 1:
        steps.append(transforms.Grayscale(1))
    if size is not None:
        steps.append(transforms.Resize((size, size), antialias=True))
    steps.append(transforms.PILToTensor())
    dataset = datasets.ImageFolder(str(folder), transform=transforms.Compose(steps))
    images = torch.stack([dataset[i][0] for i in range(len(dataset))])
    return images, torch.tensor(dataset.targets), dataset.classes


def recall_report(y_true: np.ndarray, y_pred: np.ndarray, classes: int) -> dict[str, Any]:
    recall = [float(np.mean(y_pred[y_true == c] == c)) for c in range(classes)]
    return {"balanced_accuracy": float(np.mean(recall)), "per_class_recall": recall}


def random_crop(images: Tensor, padding: int, generator: torch.Generator) -> Tensor:
    if not padding:
        return images
    n, _, h, w = images.shape
    padded = F.pad(images, (padding,) * 4)
    out = torch.empty_like(images)
    offsets = torch.randint(0, 2 * padding + 1, (n, 2), generator=generator)
    for i, (dy, dx) in enumerate(offsets.tolist()):
        out[i] = padded[i, :, dy : dy + h, dx : dx + w]
    return out


def image_loop(train_dir: Path, test_dir: Path, seed: int, settings: LoopSettings) -> dict[str, Any]:
    """Train the hand-written loop on `train_dir`, return test recall per class."""
    from imbalanced.models import SmallCNN  # the same architecture (a plain nn.Module)

    x_train, y_train, classes = read_folder(train_dir, settings.size, settings.channels)
    x_test, y_test, _ = read_folder(test_dir, settings.size, settings.channels)
    scale = x_train.float() / 255.0
    if settings.normalize:
        mean = scale.mean(dim=(0, 2, 3), keepdim=True)[0]
        std = scale.std(dim=(0, 2, 3), keepdim=True)[0].clamp_min(1e-3)
    else:
        mean, std = torch.zeros(settings.channels, 1, 1), torch.ones(settings.channels, 1, 1)
    num_classes = len(classes)
    weights = balanced_weights(y_train, num_classes)
    log_prior = torch.log(torch.bincount(y_train, minlength=num_classes).float() / len(y_train))

    torch.manual_seed(seed)
    model = SmallCNN(settings.channels, num_classes, channels=settings.channels_cnn)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(
        TensorDataset(x_train, y_train), batch_size=settings.batch_size, shuffle=True, generator=generator
    )
    model.train()
    for _ in range(settings.epochs):
        for images, labels in loader:
            images = random_crop(images, settings.crop_padding, generator)
            logits = model((images.float() / 255.0 - mean) / std)
            if settings.loss == "weighted_ce":
                loss = F.cross_entropy(logits, labels, weight=weights)
            elif settings.loss == "logit_adjusted":
                loss = F.cross_entropy(logits + log_prior, labels)
            else:
                loss = F.cross_entropy(logits, labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        predicted = torch.cat([model((b.float() / 255.0 - mean) / std).argmax(1) for b in x_test.split(512)])
    return recall_report(y_test.numpy(), predicted.numpy(), num_classes)


def table_loop(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    seed: int,
    loss: str = "weighted_ce",
    epochs: int = 60,
    batch_size: int = 256,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    hidden: tuple[int, ...] = (256, 256),
    dropout: float = 0.3,
) -> dict[str, Any]:
    """The MLP a user writes for a table: standardized features, AdamW, (weighted) cross entropy."""
    mean, std = x_train.mean(0), x_train.std(0)
    std = np.where(std > 0, std, 1.0)
    xt = torch.as_tensor((x_train - mean) / std, dtype=torch.float32)
    xs = torch.as_tensor((x_test - mean) / std, dtype=torch.float32)
    yt = torch.as_tensor(y_train, dtype=torch.long)
    classes = int(max(y_train.max(), y_test.max())) + 1
    weights = balanced_weights(yt, classes)
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    width = xt.shape[1]
    for out in hidden:
        layers += [nn.Linear(width, out), nn.ReLU(), nn.Dropout(dropout)]
        width = out
    model = nn.Sequential(*layers, nn.Linear(width, classes))
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(TensorDataset(xt, yt), batch_size=batch_size, shuffle=True, generator=generator)
    model.train()
    for _ in range(epochs):
        for features, labels in loader:
            logits = model(features)
            value = F.cross_entropy(logits, labels, weight=weights if loss == "weighted_ce" else None)
            optimizer.zero_grad()
            value.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        predicted = model(xs).argmax(1).numpy()
    return recall_report(np.asarray(y_test), predicted, classes)


# ---- the template, in-process (the same code path as `python train.py ...`) ---------------------
def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        return hydra_compose(config_name="train", overrides=overrides)


def template_run(overrides: list[str], seed: int, run_dir: Path) -> dict[str, Any]:
    """`python train.py OVERRIDES seed=SEED` in this process; returns its test recall per class."""
    import logging

    from imbalanced.tasks.train import train

    shutil.rmtree(run_dir, ignore_errors=True)  # a run of this row that did not finish, or an older one
    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    report = train(compose([*overrides, *QUIET, f"seed={seed}", f"paths.output_dir={run_dir}"]))
    torch.set_num_threads(1)
    return {
        "balanced_accuracy": float(report["test/balanced_accuracy"]),
        "per_class_recall": [float(v) for v in report["test/per_class_recall"]],
        "epochs": report.get("trained_epochs"),
    }


def summary(values: list[float]) -> tuple[float, float]:
    array = np.asarray(values, dtype=float)
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else 0.0
