"""Rare events: the template against scikit-learn baselines on average precision, same splits, same run.

    PYTHONPATH=src python benchmarks/rare_event.py [--seeds 0 1 2 3 4] [--out benchmarks/results]
    PYTHONPATH=src python benchmarks/rare_event.py --write-table rare_breast_cancer.csv   # the table only

For every dataset and seed, the template trains in-process (`imbalanced.tasks.train.train`, best
checkpoint by validation average precision, threshold by max F1 on validation, calibrated
probabilities), then LogisticRegression and HistGradientBoostingClassifier, both with
`class_weight="balanced"`, train on the template's own training split (the datamodule rebuilt from
the run's config: same seed, same rows) and are scored on its test split. Datasets:

- `synthetic`: `experiment=rare_event` (binary, 0.5% positives: 1 in 201, 40000 rows).
- `breast_cancer`: scikit-learn's bundled breast-cancer table (569 rows, 30 features) made rarer:
  all 357 benign rows and 19 malignant ones drawn by the seed (5% malignant), read through
  `data=tabular` from a CSV; val and test are 25% each so each holds about 5 malignant rows.
- `multiclass`: `data=synthetic` (5 classes, imbalance ratio 20) for the calibration effect only.

Reports test average precision (of the minority class; multiclass: macro one-vs-rest), ROC-AUC and
ECE (top-label, 15 bins) before / after the template's calibration. Writes `rare_event.md` and
`rare_event.csv` under --out.
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

QUIET = ["~callbacks.progress_bar", "+trainer.enable_progress_bar=false", "~logger"]
BREAST_CANCER_POSITIVES = 19  # with the 357 benign rows: 5% malignant


def rare_breast_cancer(seed: int):
    """The breast-cancer table with malignant rows subsampled to 5%; target column `diagnosis`."""
    import numpy as np
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    frame = frame.rename(columns={"target": "diagnosis"})
    frame["diagnosis"] = frame["diagnosis"].map({0: "malignant", 1: "benign"})
    malignant = np.flatnonzero(frame["diagnosis"] == "malignant")
    keep = np.random.default_rng(seed).choice(malignant, BREAST_CANCER_POSITIVES, replace=False)
    rows = np.sort(np.concatenate([np.flatnonzero(frame["diagnosis"] == "benign"), keep]))
    return frame.iloc[rows].reset_index(drop=True)


def dataset_overrides(dataset: str, seed: int, workdir: Path) -> list[str]:
    if dataset == "synthetic":
        return ["experiment=rare_event"]
    if dataset == "multiclass":
        return ["data=synthetic", "test_checkpoint=best"]
    path = workdir / f"rare_breast_cancer_{seed}.csv"
    rare_breast_cancer(seed).to_csv(path, index=False)
    return [
        "data=tabular",
        f"data.path={path}",
        "data.target=diagnosis",
        "data.val_fraction=0.25",
        "data.test_fraction=0.25",
        "data.batch_size=32",
        "trainer.max_epochs=40",
        "callbacks.model_checkpoint.monitor=val/average_precision",
        "optimized_metric=val/average_precision",
        "test_checkpoint=best",
    ]


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        return hydra_compose(config_name="train", overrides=overrides)


def baselines(cfg, binary: bool) -> dict[str, float]:
    """LogisticRegression and HistGradientBoosting (class_weight="balanced") on the run's splits."""
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import average_precision_score, roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from imbalanced.from_config import build_datamodule
    from imbalanced.longtail.decision import positive_class
    from imbalanced.reporting.plots import reliability_bins

    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")
    splits = datamodule.splits
    positive = positive_class(datamodule.class_counts)
    models = {
        "logreg": make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=5000)),
        "hgb": HistGradientBoostingClassifier(class_weight="balanced", random_state=cfg.seed),
    }
    out = {}
    for name, model in models.items():
        model.fit(splits.x_train, splits.y_train)
        probabilities = model.predict_proba(splits.x_test)
        if binary:
            truth = splits.y_test == positive
            out[f"{name}_ap"] = average_precision_score(truth, probabilities[:, positive])
            out[f"{name}_roc_auc"] = roc_auc_score(truth, probabilities[:, positive])
        else:
            onehot = np.eye(probabilities.shape[1])[splits.y_test]
            out[f"{name}_ap"] = average_precision_score(onehot, probabilities, average="macro")
            out[f"{name}_roc_auc"] = roc_auc_score(splits.y_test, probabilities, multi_class="ovr")
        out[f"{name}_ece"] = reliability_bins(probabilities, splits.y_test)["ece"]
    return out


def run_one(dataset: str, seed: int, workdir: Path) -> dict[str, float]:
    from imbalanced.tasks.train import train

    run_dir = workdir / dataset / f"seed{seed}"
    cfg = compose(
        [*dataset_overrides(dataset, seed, workdir), *QUIET, f"seed={seed}", f"paths.output_dir={run_dir}"]
    )
    report = train(cfg)
    row = {
        "template_ap": report["test/average_precision"],
        "template_roc_auc": report["test/roc_auc"],
        "ece_raw": report["test/ece_raw"],
        "ece_calibrated": report["test/ece"],
        "brier_raw": report["test/brier_raw"],
        "brier_calibrated": report["test/brier"],
        "temperature": report["calibration_temperature"],
        "threshold": float("nan") if report["decision_threshold"] is None else report["decision_threshold"],
        "test_f1": report.get("test/f1", float("nan")),
    }
    row.update(baselines(cfg, binary=len(report["class_names"]) == 2))
    return row


def mean_std(values: list[float], digits: int = 3) -> str:
    values = [v for v in values if v is not None and v == v]  # NaN: not defined (multiclass threshold)
    if len(values) < 2:
        return "-"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument(
        "--datasets",
        nargs="+",
        default=["synthetic", "breast_cancer", "multiclass"],
        choices=["synthetic", "breast_cancer", "multiclass"],
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--write-table", type=Path, help="write the rare breast-cancer CSV (seed 0) and exit")
    args = parser.parse_args()
    if args.write_table:
        rare_breast_cancer(0).to_csv(args.write_table, index=False)
        print(f"wrote {args.write_table}")
        return
    if len(args.seeds) < 2:
        parser.error("give at least 2 seeds (the table reports the spread)")
    import torch

    torch.set_num_threads(1)
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    rows: list[dict] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rare_event_") as tmp:
        for dataset in args.datasets:
            for seed in args.seeds:
                t0 = time.perf_counter()
                result = run_one(dataset, seed, Path(tmp))
                rows.append(
                    {
                        "dataset": dataset,
                        "seed": seed,
                        **result,
                        "seconds": round(time.perf_counter() - t0, 1),
                    }
                )
                print(
                    f"{dataset:13s} seed {seed}: AP template {result['template_ap']:.3f} logreg "
                    f"{result['logreg_ap']:.3f} hgb {result['hgb_ap']:.3f}; ECE raw "
                    f"{result['ece_raw']:.4f} -> calibrated {result['ece_calibrated']:.4f}",
                    flush=True,
                )
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "rare_event.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    lines = [
        f"Test split, mean ± std over seeds {args.seeds}. AP: average precision of the minority "
        "class (multiclass: macro one-vs-rest); ECE: top-label, 15 bins.",
        "",
        "| dataset | template AP | LogisticRegression AP | HistGradientBoosting AP | template ROC-AUC "
        "| template ECE raw → calibrated | LogReg ECE | HGB ECE | threshold | test F1 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for dataset in args.datasets:
        runs = [r for r in rows if r["dataset"] == dataset]

        def cell(key: str, digits: int = 3, runs: list[dict] = runs) -> str:
            return mean_std([r[key] for r in runs], digits)

        lines.append(
            f"| {dataset} | {cell('template_ap')} | {cell('logreg_ap')} | {cell('hgb_ap')} | "
            f"{cell('template_roc_auc')} | {cell('ece_raw', 4)} → {cell('ece_calibrated', 4)} | "
            f"{cell('logreg_ece', 4)} | {cell('hgb_ece', 4)} | {cell('threshold', 3)} | {cell('test_f1')} |"
        )
    lines += ["", f"Total time: {time.perf_counter() - started:.0f} s."]
    (args.out / "rare_event.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
