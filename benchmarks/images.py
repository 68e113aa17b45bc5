"""Image training throughput: the template's two data paths vs a hand-written ImageFolder loop.

All three train the same network with the same batch size, SGD settings, augmentation (random crop
32 with padding 4 + horizontal flip) and normalization, on the same CIFAR-10-LT training split
(12,406 images at ratio 100) built from a synthetic tree in CIFAR's on-disk format (random pixels:
this measures speed, not accuracy; no download):

- template, in_memory: `python train.py data=cifar10_lt` as built by `imbalanced.tasks.train`: uint8
  images in memory, each batch gathered by index and augmented as batched tensor ops after the
  transfer (with `--on-device` the images live on the GPU);
- template, dataloader: `data.backend=dataloader`: torchvision v2 transforms per image in
  `--workers` worker processes;
- hand-written: the same images written as PNG files, torchvision `ImageFolder` + `DataLoader`
  (`--workers`, shuffle) + a plain PyTorch loop.

Throughput = training images / wall time of one training epoch (no validation); the first epoch
(first-call costs, worker start-up) is left out; the paths alternate `--repeats` times and the
median epoch of each is reported. `--threads 1` (default) on both sides: stable on a busy machine.

    python benchmarks/images.py                                   # CPU, a small CNN defined here
    python benchmarks/images.py --n-max 1000                      # a fifth of it (2,481 images)
    python benchmarks/images.py --accelerator gpu --precision bf16-mixed --channels-last --on-device \
        --model resnet32 --workers 8                              # configs/model/resnet32.yaml
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import Tensor, nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))  # cifar_tree: writes CIFAR's on-disk format


class SmallCNN(nn.Module):
    """Three conv-BN-ReLU stages (16/32/64 channels, stride 2 after the first) and a linear head."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 16) -> None:
        super().__init__()
        layers, channels = [], in_channels
        for i, out in enumerate((width, 2 * width, 4 * width)):
            layers += [
                nn.Conv2d(channels, out, 3, stride=1 if i == 0 else 2, padding=1, bias=False),
                nn.BatchNorm2d(out),
                nn.ReLU(inplace=True),
            ]
            channels = out
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


def compose(args: argparse.Namespace, root: Path, run_dir: str, extra: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import open_dict

    overrides = [
        "data=cifar10_lt",
        f"data.root={root}",
        f"data.batch_size={args.batch_size}",
        f"data.channels_last={str(args.channels_last).lower()}",
        "class_weights=none",
        "optimizer=sgd",
        "optimizer.lr=0.1",
        "optimizer.weight_decay=0.0002",
        f"trainer.accelerator={args.accelerator}",
        f"trainer.precision={args.precision}",
        f"trainer.max_epochs={args.epochs}",
        "+trainer.limit_val_batches=0",
        "~logger",
        "callbacks.model_checkpoint.monitor=null",
        "callbacks.progress_bar.refresh_rate=0",
        f"data.n_max={args.n_max}",
        f"paths.output_dir={run_dir}",
        *([f"model={args.model}"] if args.model else []),
        *extra,
    ]
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = hydra_compose("train", overrides=overrides)
    if not args.model:
        with open_dict(cfg):
            cfg.model.backbone = {"_target_": f"{__name__}.SmallCNN"}
    return cfg


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def run_template(cfg) -> tuple[list[float], int, dict]:
    """Seconds of each training epoch of the template's fit, the training-set size, normalization."""
    import lightning as L

    from imbalanced.from_config import build_datamodule, build_model, build_trainer
    from imbalanced.runs.runtime import apply_runtime_settings

    apply_runtime_settings(cfg)
    L.seed_everything(cfg.seed, verbose=False)
    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")
    model = build_model(cfg, datamodule)
    trainer = build_trainer(cfg)

    class Timer(L.Callback):
        def __init__(self) -> None:
            self.seconds: list[float] = []

        def on_train_epoch_start(self, trainer, *args) -> None:
            _sync(trainer.strategy.root_device)
            self.start = time.perf_counter()

        def on_train_epoch_end(self, trainer, *args) -> None:
            _sync(trainer.strategy.root_device)
            self.seconds.append(time.perf_counter() - self.start)

    timer = Timer()
    trainer.callbacks.append(timer)
    trainer.fit(model, datamodule=datamodule)
    return timer.seconds, len(datamodule.splits.y_train), datamodule


def write_pngs(datamodule, folder: Path) -> None:
    from PIL import Image

    splits = datamodule.splits
    for i, (image, label) in enumerate(zip(splits.x_train, splits.y_train, strict=True)):
        target = folder / f"{label:02d}"
        target.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image.transpose(1, 2, 0)).save(target / f"{i:05d}.png")


def run_hand_loop(args: argparse.Namespace, cfg, folder: Path, state: dict) -> list[float]:
    """torchvision ImageFolder + DataLoader + a plain loop; seconds of each training epoch."""
    from hydra.utils import instantiate
    from torchvision.datasets import ImageFolder
    from torchvision.transforms import v2

    device = torch.device("cuda" if args.accelerator == "gpu" else "cpu")
    transform = v2.Compose(
        [
            v2.ToImage(),
            v2.RandomCrop(32, padding=4),
            v2.RandomHorizontalFlip(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize((state["mean"].flatten() / 255).tolist(), (state["std"].flatten() / 255).tolist()),
        ]
    )
    loader = torch.utils.data.DataLoader(
        ImageFolder(str(folder), transform=transform),
        batch_size=args.batch_size,
        shuffle=True,
        num_workers=args.workers,
        pin_memory=device.type == "cuda",
        persistent_workers=args.workers > 0,
    )
    model = instantiate(cfg.model.backbone, in_channels=3, num_classes=10).to(device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=2e-4)
    bf16 = args.precision == "bf16-mixed"
    seconds = []
    for _ in range(args.epochs):
        _sync(device)
        start = time.perf_counter()
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if args.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                loss = nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        _sync(device)
        seconds.append(time.perf_counter() - start)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accelerator", default="cpu", choices=["cpu", "gpu"])
    parser.add_argument("--precision", default="32-true")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--on-device", action="store_true", help="in_memory path: images on the GPU")
    parser.add_argument("--model", default=None, help="a configs/model option (default: SmallCNN here)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--n-max", type=int, default=5000, help="head class size (5000: CIFAR-10-LT)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers (dataloader paths)")
    parser.add_argument("--repeats", type=int, default=2, help="alternating runs of the three paths")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: stable on a busy CPU)")
    parser.add_argument("--root", default=None, help="an existing CIFAR folder instead of a synthetic one")
    args = parser.parse_args()
    from cifar_tree import write_cifar_tree

    torch.manual_seed(0)
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = (
            Path(args.root)
            if args.root
            else write_cifar_tree(Path(tmp) / "cifar", train_per_class=5000, test_per_class=1000)
        )
        workers = [
            f"data.num_workers={args.workers}",
            f"data.persistent_workers={str(args.workers > 0).lower()}",
            f"data.pin_memory={str(args.accelerator == 'gpu').lower()}",
        ]
        paths = {
            "template in_memory (batched augmentation)": [f"data.on_device={str(args.on_device).lower()}"],
            f"template dataloader ({args.workers} workers, v2 transforms)": [
                "data.backend=dataloader",
                *workers,
            ],
        }
        hand = f"hand-written ImageFolder + DataLoader ({args.workers} workers)"
        results: dict[str, list[float]] = {name: [] for name in [*paths, hand]}
        for repeat in range(args.repeats):  # the paths alternate: a busy machine slows them alike
            for name, extra in paths.items():
                cfg = compose(args, root, f"{tmp}/{repeat}{len(results[name])}", extra)
                seconds, images, datamodule = run_template(cfg)
                results[name] += seconds[1:] if len(seconds) > 1 else seconds
            if repeat == 0:
                write_pngs(datamodule, Path(tmp) / "pngs")
            seconds = run_hand_loop(args, cfg, Path(tmp) / "pngs", datamodule.input_transform_state())
            results[hand] += seconds[1:] if len(seconds) > 1 else seconds

    model = args.model or "SmallCNN (benchmarks/images.py)"
    print(
        f"CIFAR-10-LT training split, n_max {args.n_max} ({images} images, synthetic pixels), {model}, "
        f"batch {args.batch_size}, "
        f"{args.accelerator} {args.precision}{', channels_last' if args.channels_last else ''}"
        f"{', on_device' if args.on_device else ''}, {args.repeats} x {args.epochs} epochs (first of each "
        f"left out, medians), {torch.get_num_threads()} torch threads"
    )
    baseline = None
    for name, seconds in reversed(results.items()):
        median = statistics.median(seconds)
        rate = images / median
        baseline = baseline or rate
        print(
            f"  {name:58s} {median:7.2f} s/epoch {rate:9.0f} images/s  x{rate / baseline:.2f} vs hand-written"
        )


if __name__ == "__main__":
    main()
