"""Class weights from 10^4 to 10^8 labels: time and peak memory, against scikit-learn.

The template counts classes with one `np.bincount` over the training labels (int64, what every
datamodule holds) and turns counts into weights with a C-element formula
(`imbalanced.longtail.weights`). scikit-learn's `compute_class_weight("balanced", ...)` label-encodes `y`
(a sort, O(N log N), several copies of `y`), so by default it is only run up to 10^7 labels
(`--sklearn-max`); both results are checked to agree wherever both ran.

Peak memory is the peak of Python-tracked allocations above the labels themselves (tracemalloc
sees NumPy's buffers). The last part proves the datamodule never loads samples to count: it runs
`SyntheticDataModule.setup()` with the dataset class replaced by one that counts `__getitem__`
calls, and with a source dataset (torchvision-style `targets` attribute) that counts its own.

    python benchmarks/class_weights.py                     # 10^4 .. 10^8, sklearn up to 10^7
    python benchmarks/class_weights.py --sklearn-max 1e8   # sklearn at 10^8 too (slow, ~GBs)
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from imbalanced.longtail.weights import class_counts, compute_class_weights  # noqa: E402


def long_tail_labels(n: int, num_classes: int, seed: int = 0) -> np.ndarray:
    """int64 labels with an exponential long tail (class 0 most frequent, ratio 100)."""
    shares = 100.0 ** (-np.arange(num_classes) / (num_classes - 1))
    rng = np.random.default_rng(seed)
    return rng.choice(num_classes, size=n, p=shares / shares.sum()).astype(np.int64)


def measure(fn, repeats: int) -> tuple[float, float, object]:
    """(best seconds, peak MiB of new allocations, result)."""
    best = float("inf")
    result = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return best, peak / 2**20, result


def template_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    return compute_class_weights(class_counts(labels, num_classes), strategy="balanced")


def sklearn_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    from sklearn.utils.class_weight import compute_class_weight

    return compute_class_weight("balanced", classes=np.arange(num_classes), y=labels)


def getitem_proof() -> None:
    """Run the datamodule's setup with counting datasets; print the number of __getitem__ calls."""
    import torch
    from torch.utils.data import Dataset

    import imbalanced.data.in_memory as base
    from imbalanced.data.in_memory import InMemoryDataModule, Splits
    from imbalanced.data.tables.synthetic import SyntheticDataModule

    calls = {"TensorBatchDataset": 0, "source dataset": 0}

    class CountingTensorBatchDataset(base.TensorBatchDataset):
        def __getitem__(self, index):
            calls["TensorBatchDataset"] += 1
            return super().__getitem__(index)

    class LabelledDataset(Dataset):
        """A torchvision-style dataset: samples behind __getitem__, labels in `targets`."""

        def __init__(self, n: int) -> None:
            self.data = np.random.default_rng(0).normal(size=(n, 8)).astype(np.float32)
            self.targets = long_tail_labels(n, 4)

        def __len__(self) -> int:
            return len(self.targets)

        def __getitem__(self, i: int):
            calls["source dataset"] += 1
            return torch.as_tensor(self.data[i]), int(self.targets[i])

    class FromDataset(InMemoryDataModule):
        def load_splits(self) -> Splits:
            source = LabelledDataset(40_000)
            x, y = source.data, source.targets
            return Splits(
                x[:30000],
                y[:30000],
                x[30000:35000],
                y[30000:35000],
                x[35000:],
                y[35000:],
                class_names=[f"c{i}" for i in range(4)],
            )

    original = base.TensorBatchDataset
    base.TensorBatchDataset = CountingTensorBatchDataset
    try:
        for datamodule in (
            SyntheticDataModule(n_samples=20000, class_weights={"strategy": "balanced"}),
            FromDataset(class_weights={"strategy": "balanced"}),
        ):
            datamodule.setup("fit")
            expected = np.bincount(datamodule.splits.y_train, minlength=datamodule.num_classes)
            assert np.array_equal(datamodule.class_counts, expected)
            print(
                f"  {type(datamodule).__name__}.setup(): counts {datamodule.class_counts.tolist()}, "
                f"__getitem__ calls: {dict(calls)}"
            )
    finally:
        base.TensorBatchDataset = original
    if any(calls.values()):
        raise SystemExit("FAIL: setup() called __getitem__")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e4, 1e5, 1e6, 1e7, 1e8])
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--sklearn-max", type=float, default=1e7)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    print(
        f"numpy {np.__version__}; {args.classes} classes, long-tailed int64 labels; best of "
        f"{args.repeats}; peak = extra memory beyond the labels"
    )
    print(
        f"{'labels':>12} {'template s':>11} {'peak MiB':>9} {'sklearn s':>10} {'peak MiB':>9} "
        f"{'speed-up':>9}  agree"
    )
    for size in args.sizes:
        n = int(size)
        labels = long_tail_labels(n, args.classes)
        t_time, t_peak, t_weights = measure(
            functools.partial(template_weights, labels, args.classes), args.repeats
        )
        row = f"{n:>12,} {t_time:>11.4f} {t_peak:>9.2f}"
        if n <= args.sklearn_max:
            s_time, s_peak, s_weights = measure(
                functools.partial(sklearn_weights, labels, args.classes), args.repeats if n < 1e7 else 1
            )
            agree = np.allclose(t_weights, s_weights, rtol=1e-12)
            row += f" {s_time:>10.4f} {s_peak:>9.1f} {s_time / t_time:>8.1f}x  {agree}"
        else:
            row += f" {'skipped':>10} {'':>9} {'':>9}  (over --sklearn-max={args.sklearn_max:.0e})"
        print(row, flush=True)
    print("proof that counting never loads samples:")
    getitem_proof()


if __name__ == "__main__":
    main()
