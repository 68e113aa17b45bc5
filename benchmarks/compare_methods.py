"""Compare the long-tail techniques: balanced accuracy and macro-F1, mean ± std over seeds.

    PYTHONPATH=src python benchmarks/compare_methods.py [--seeds 0 1 2] [--out benchmarks/results]

Every method is one set of overrides on the same config (same model, epochs, learning rate and
data), trained in-process with `imbalanced.tasks.train.train` (model selection by validation balanced
accuracy, as `train.py` does), on two datasets:

- `digits`: `data=digits` with imbalance_ratio 50 (digit 0: 114 training images, digit 9: 2),
  balanced test split of 40 images per digit.
- `synthetic`: `data=synthetic`, 20 classes, exponential long tail with imbalance_ratio 100,
  class_sep 1.0, 6000 samples (training counts 911 ... 9), stratified split,
  so val and test are long-tailed as well; balanced accuracy weighs every class equally.

Writes `compare_methods.md` (the table) and `compare_methods.csv` (one row per run) under --out.
"""

from __future__ import annotations

import argparse
import csv
import logging
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

EPOCHS = 20
DRW_EPOCH = 14  # DRW / LDAM-DRW switch to the re-weighted loss for the last third of training

DATASETS = {
    "digits": ["data=digits", "data.imbalance_ratio=50", "data.batch_size=64"],
    "synthetic": [
        "data=synthetic",
        "data.num_classes=20",
        "data.imbalance_ratio=100",
        "data.n_samples=6000",
        "data.class_sep=1.0",
        "data.n_features=20",
        "data.batch_size=256",
    ],
}

METHODS = {
    "cross entropy (no weighting)": ["class_weights=none"],
    "balanced weights": ["class_weights=balanced"],
    "effective number weights": ["class_weights=effective_number"],
    "DRW (effective number)": ["class_weights=effective_number", f"drw_start_epoch={DRW_EPOCH}"],
    "focal (gamma=2)": ["loss=focal", "class_weights=none"],
    "logit-adjusted loss (tau=1)": ["loss=logit_adjusted", "class_weights=none"],
    "post-hoc logit adjustment (tau=1)": ["class_weights=none", "posthoc_tau=1.0"],
    "balanced softmax": ["loss=balanced_softmax", "class_weights=none"],
    "LDAM-DRW (cosine head)": [
        "loss=ldam",
        "model=mlp_cosine",
        "class_weights=effective_number",
        f"drw_start_epoch={DRW_EPOCH}",
    ],
    "class-balanced sampling (q=0)": ["sampler=class_balanced", "class_weights=none"],
}

# The last epoch's model is evaluated (no checkpoint selection, validation only at the end):
# fewer moving parts for a comparison, and much faster on a busy CPU.
COMMON = [
    f"trainer.max_epochs={EPOCHS}",
    "scheduler=cosine",
    "~callbacks.progress_bar",
    "~callbacks.model_checkpoint",
    "+trainer.enable_progress_bar=false",
    "~logger",
    f"+trainer.check_val_every_n_epoch={EPOCHS}",
    "+trainer.enable_checkpointing=false",
]


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        return hydra_compose(config_name="train", overrides=overrides)


def run_one(dataset: str, method: str, seed: int, workdir: Path) -> dict[str, float]:
    from imbalanced.tasks.train import train

    run_dir = workdir / dataset / method.split(" (")[0].replace(" ", "_") / f"seed{seed}"
    cfg = compose(
        [*DATASETS[dataset], *METHODS[method], *COMMON, f"seed={seed}", f"paths.output_dir={run_dir}"]
    )
    report = train(cfg)
    return {
        key: report[f"test/{key}"]
        for key in ("balanced_accuracy", "macro_f1", "head_recall", "medium_recall", "tail_recall")
    }


def mean_std(values: list[float]) -> str:
    return f"{100 * statistics.mean(values):.1f} ± {100 * statistics.stdev(values):.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    if len(args.seeds) < 2:
        parser.error("give at least 2 seeds (the table reports the spread)")
    import torch

    torch.set_num_threads(1)  # tiny matrices: one thread is faster than two contending ones
    logging.disable(logging.WARNING)  # Lightning's per-run INFO lines
    warnings.filterwarnings("ignore")
    rows: list[dict] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="compare_methods_") as tmp:
        for dataset in args.datasets:
            for method in args.methods:
                for seed in args.seeds:
                    t0 = time.perf_counter()
                    result = run_one(dataset, method, seed, Path(tmp))
                    rows.append(
                        {
                            "dataset": dataset,
                            "method": method,
                            "seed": seed,
                            **result,
                            "seconds": round(time.perf_counter() - t0, 1),
                        }
                    )
                    print(
                        f"{dataset:9s} {method:36s} seed {seed}: balanced acc "
                        f"{result['balanced_accuracy']:.4f}  macro-F1 {result['macro_f1']:.4f}",
                        flush=True,
                    )
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "compare_methods.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    lines = [
        f"Test-set metrics in %, mean ± std over seeds {args.seeds}; {EPOCHS} epochs, MLP 256-256, "
        "AdamW lr 1e-3, cosine schedule. `tail` is the mean recall of the rarest third of classes.",
        "",
    ]
    for dataset in args.datasets:
        lines += [
            f"**{dataset}**",
            "",
            "| method | balanced accuracy | macro-F1 | head recall | tail recall |",
            "|---|---|---|---|---|",
        ]
        for method in args.methods:
            runs = [r for r in rows if r["dataset"] == dataset and r["method"] == method]
            lines.append(
                f"| {method} | "
                + " | ".join(
                    mean_std([r[k] for r in runs])
                    for k in ("balanced_accuracy", "macro_f1", "head_recall", "tail_recall")
                )
                + " |"
            )
        lines.append("")
    lines.append(f"Total time: {time.perf_counter() - started:.0f} s.")
    (args.out / "compare_methods.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
