"""Minority-class quality without tuning: the template against the baselines a user would write.

    PYTHONPATH=src python benchmarks/quality.py [--quick] [--seeds 0 1 2] [--tables ...] [--ablations]
    PYTHONPATH=src python benchmarks/quality.py --variant model.backbone.dropout=0.1 [--variant ...]

Tables (built offline; none made by the team for this purpose). Every table has a long-tailed
training file (class i keeps n_max * ratio^(-i/(C-1)) rows, exponential profile) and a balanced
test file, written as CSVs with a `label` column, and the template reads them as a user would:
`data=tabular data.path=train.csv data.test_path=test.csv data.target=label`.

- `digits`: scikit-learn's bundled handwritten digits (1797 rows, 64 pixel features), ratio 20.
- `breast_cancer`: scikit-learn's bundled Wisconsin breast-cancer table (2 classes), the malignant
  class the minority at ratio 10.
- `mc_5x10`, `mc_10x20`, `mc_20x100`, `mc_50x200`: `make_classification` problems (classes x
  imbalance ratio), 20-40 features, class_sep 1.0.

Each (table, seed) runs in one process, in the same run:
- the template (`imbalanced.tasks.train.train`, in-process) with its defaults (no overrides besides
  the data) and the presets in PRESETS; the default run's *best-by-validation* checkpoint is also
  tested (`eval.py` in-process) to compare the two selection rules on the same training run;
- scikit-learn LogisticRegression and HistGradientBoostingClassifier with class_weight="balanced"
  (standardized inputs for the former), trained on the whole training file;
- a hand-written PyTorch MLP of the template's size (256-256, ReLU, AdamW lr 1e-3, batch 128, 60
  epochs, standardized inputs) trained on the whole training file with plain cross entropy,
  class-weighted cross entropy (scikit-learn's "balanced" weights) and the logit-adjusted loss (tau=1).

Prints one table (balanced accuracy on the balanced test file, %, mean ± std over seeds) and writes
it to `--out/quality.md` (+ quality.csv, one row per run).
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

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

# name -> (source, classes, imbalance ratio, n_max training rows of the head class, test rows per class)
TABLES = {
    "digits": ("digits", 10, 20, 140, 30),
    "breast_cancer": ("breast_cancer", 2, 10, 250, 60),
    "mc_5x10": ("make_classification", 5, 10, 400, 100),
    "mc_10x20": ("make_classification", 10, 20, 400, 60),
    "mc_20x100": ("make_classification", 20, 100, 500, 40),
    "mc_50x200": ("make_classification", 50, 200, 400, 20),
}
QUICK_TABLES = ["digits", "mc_10x20", "mc_20x100"]

PRESETS = {
    "without dropout, the earlier default (model.backbone.dropout=0.0)": ["model.backbone.dropout=0.0"],
    "logit_adjusted": ["loss=logit_adjusted", "class_weights=none"],
}
# --ablations: what each default is worth (only these runs, no baselines)
ABLATIONS = {
    "with the earlier defaults (10 epochs, best-by-val checkpoint, no split floor, no refit)": [
        "trainer.max_epochs=10",
        "test_checkpoint=best",
        "data.min_train_rows=0",
        "refit_with_validation=false",
    ],
    "default without refit (refit_with_validation=false)": ["refit_with_validation=false"],
    "default with the shorter budget (budget.min_steps=500)": ["budget.min_steps=500"],
    "default without the split floor (data.min_train_rows=0)": ["data.min_train_rows=0"],
    "default without dropout (model.backbone.dropout=0.0)": ["model.backbone.dropout=0.0"],
    # the selection options measured and not adopted (benchmarks/selection_options.py)
    "default validating and testing an EMA of the parameters (decay 0.999)": [
        "+callbacks.ema._target_=selection_options.ParameterEMA"
    ],
    "default testing the best checkpoint by class-balanced validation log-loss": [
        "+callbacks.balanced_log_loss._target_=selection_options.BalancedLogLoss",
        "callbacks.model_checkpoint.monitor=val/balanced_log_loss",
        "callbacks.model_checkpoint.mode=min",
        "test_checkpoint=best",
    ],
}
QUIET = ["~callbacks.progress_bar", "+trainer.enable_progress_bar=false", "~logger"]

MLP_EPOCHS, MLP_BATCH, MLP_LR = 60, 128, 1e-3


def long_tail_sizes(n_max: int, classes: int, ratio: float) -> np.ndarray:
    i = np.arange(classes)
    return np.maximum(np.floor(n_max * ratio ** (-i / max(classes - 1, 1))), 1).astype(int)


def source_table(source: str, classes: int, n_needed: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn import datasets

    if source == "digits":
        return datasets.load_digits(return_X_y=True)
    if source == "breast_cancer":
        x, y = datasets.load_breast_cancer(return_X_y=True)
        return x, 1 - y  # malignant (0 in scikit-learn, 212 rows) becomes class 1, the minority
    n_features = 20 if classes <= 10 else 40
    return datasets.make_classification(
        n_samples=n_needed,
        n_features=n_features,
        n_informative=n_features // 2 + 1,
        n_redundant=2,
        n_classes=classes,
        n_clusters_per_class=1,
        class_sep=1.0,
        flip_y=0.01,
        random_state=1000 + seed,
    )


def build_table(name: str, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test): long-tailed training rows, a balanced test set."""
    source, classes, ratio, n_max, n_test = TABLES[name]
    sizes = long_tail_sizes(n_max, classes, ratio)
    x, y = source_table(source, classes, (n_max + n_test) * classes * 2, seed)
    rng = np.random.default_rng(seed)
    train_rows, test_rows = [], []
    for c in range(classes):
        rows = rng.permutation(np.flatnonzero(y == c))
        test_rows.append(rows[:n_test])
        train_rows.append(rows[n_test : n_test + sizes[c]])
    train, test = np.concatenate(train_rows), np.concatenate(test_rows)
    return x[train].astype(np.float32), y[train], x[test].astype(np.float32), y[test]


def write_csv(path: Path, x: np.ndarray, y: np.ndarray) -> None:
    import pandas as pd

    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])])
    frame["label"] = [f"c{int(v):02d}" for v in y]
    frame.to_csv(path, index=False)


# ---- baselines ------------------------------------------------------------------------------------
def sklearn_baselines(x_train, y_train, x_test, y_test, seed: int) -> dict[str, float]:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    logreg = make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=2000))
    hgb = HistGradientBoostingClassifier(class_weight="balanced", random_state=seed)
    models = (("sklearn LogisticRegression", logreg), ("sklearn HistGradientBoosting", hgb))
    return {
        name: balanced_accuracy_score(y_test, model.fit(x_train, y_train).predict(x_test))
        for name, model in models
    }


def mlp_baselines(x_train, y_train, x_test, y_test, seed: int) -> dict[str, float]:
    """The 20-line PyTorch loop a user would write, three losses."""
    import torch
    import torch.nn.functional as F
    from sklearn.metrics import balanced_accuracy_score

    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    xt = torch.as_tensor((x_train - mean) / std)
    yt = torch.as_tensor(y_train, dtype=torch.long)
    xs = torch.as_tensor((x_test - mean) / std)
    classes = int(y_train.max()) + 1
    counts = torch.bincount(yt, minlength=classes).double()
    weights = (len(yt) / (classes * counts)).float()
    log_prior = torch.log(counts / counts.sum()).float()
    results = {}
    for name in ("cross entropy", "weighted cross entropy", "logit-adjusted loss"):
        torch.manual_seed(seed)
        net = torch.nn.Sequential(
            torch.nn.Linear(xt.shape[1], 256),
            torch.nn.ReLU(),
            torch.nn.Linear(256, 256),
            torch.nn.ReLU(),
            torch.nn.Linear(256, classes),
        )
        opt = torch.optim.AdamW(net.parameters(), lr=MLP_LR, weight_decay=1e-4)
        for _ in range(MLP_EPOCHS):
            for batch in torch.randperm(len(yt)).split(MLP_BATCH):
                logits = net(xt[batch])
                if name == "weighted cross entropy":
                    loss = F.cross_entropy(logits, yt[batch], weight=weights)
                elif name == "logit-adjusted loss":
                    loss = F.cross_entropy(logits + log_prior, yt[batch])
                else:
                    loss = F.cross_entropy(logits, yt[batch])
                opt.zero_grad()
                loss.backward()
                opt.step()
        with torch.no_grad():
            predicted = net(xs).argmax(1).numpy()
        results[f"PyTorch MLP, {name}"] = balanced_accuracy_score(y_test, predicted)
    return results


# ---- the template -------------------------------------------------------------------------------------
def compose(config: str, overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        return hydra_compose(config_name=config, overrides=overrides)


def template_runs(
    train_csv: Path,
    test_csv: Path,
    seed: int,
    workdir: Path,
    template_only: dict[str, list[str]] | None = None,
) -> dict[str, float]:
    from imbalanced.tasks.evaluate import evaluate
    from imbalanced.tasks.train import train

    data = ["data=tabular", f"data.path={train_csv}", f"data.test_path={test_csv}", "data.target=label"]
    results = {}
    if template_only:  # --ablations / --variant: only these runs, each named by its key
        for i, (name, overrides) in enumerate(template_only.items()):
            report = train(
                compose(
                    "train",
                    [
                        *data,
                        *overrides,
                        *QUIET,
                        f"seed={seed}",
                        f"paths.output_dir={workdir / f'ablation{i}'}",
                    ],
                )
            )
            results[f"template {name}"] = report["test/balanced_accuracy"]
        return results
    run_dir = workdir / "default"
    report = train(compose("train", [*data, *QUIET, f"seed={seed}", f"paths.output_dir={run_dir}"]))
    results["template default"] = report["test/balanced_accuracy"]
    best = sorted((run_dir / "checkpoints").glob("best-*.ckpt"))[-1]
    evaluated = evaluate(
        compose(
            "eval",
            [
                f"ckpt_path={best}",
                f"data.test_path={test_csv}",
                f"paths.output_dir={workdir / 'default_best'}",
            ],
        )
    )
    results["template default, best-by-val checkpoint"] = evaluated["test/balanced_accuracy"]
    for name, overrides in PRESETS.items():
        report = train(
            compose(
                "train",
                [
                    *data,
                    *overrides,
                    *QUIET,
                    f"seed={seed}",
                    f"paths.output_dir={workdir / f'preset{len(results)}'}",
                ],
            )
        )
        results[f"template {name}"] = report["test/balanced_accuracy"]
    return results


def mean_std(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.mean(values):.1f} ± {100 * spread:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=f"tables {QUICK_TABLES}, seeds 0 1")
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--tables", nargs="+", default=None, choices=list(TABLES))
    parser.add_argument(
        "--ablations",
        action="store_true",
        help="only the template runs in ABLATIONS (-> quality_ablations.md)",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="OVERRIDE[,OVERRIDE...]",
        help="only template runs with these Hydra overrides, one run per --variant, e.g.\n"
        "--variant model.backbone.dropout=0.1 --variant model.backbone.dropout=0.5\n"
        "(-> quality_variants.md)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    seeds = args.seeds or ([0, 1] if args.quick else [0, 1, 2])
    tables = args.tables or (QUICK_TABLES if args.quick else list(TABLES))
    variants = {v: v.split(",") for v in args.variant}
    template_only = ABLATIONS if args.ablations else variants or None
    import torch

    torch.set_num_threads(1)  # small matrices: one thread is faster than two contending ones
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    rows: list[dict] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="quality_") as tmp:
        for table in tables:
            for seed in seeds:
                x_train, y_train, x_test, y_test = build_table(table, seed)
                workdir = Path(tmp) / table / f"seed{seed}"
                workdir.mkdir(parents=True)
                write_csv(workdir / "train.csv", x_train, y_train)
                write_csv(workdir / "test.csv", x_test, y_test)
                t0 = time.perf_counter()
                result = template_runs(
                    workdir / "train.csv", workdir / "test.csv", seed, workdir, template_only
                )
                t1 = time.perf_counter()
                if not template_only:
                    result.update(mlp_baselines(x_train, y_train, x_test, y_test, seed))
                t2 = time.perf_counter()
                if not template_only:
                    result.update(sklearn_baselines(x_train, y_train, x_test, y_test, seed))
                for method, value in result.items():
                    rows.append({"table": table, "seed": seed, "method": method, "balanced_accuracy": value})
                print(
                    f"{table} seed {seed} ({len(y_train)} training rows; template {t1 - t0:.0f} s, "
                    f"MLP {t2 - t1:.0f} s): " + ", ".join(f"{k} {v:.3f}" for k, v in result.items()),
                    flush=True,
                )
    methods = list(dict.fromkeys(r["method"] for r in rows))
    header = "| method | " + " | ".join(tables) + " |"
    lines = [
        f"Balanced accuracy (%) on balanced test files, mean ± std over seeds {seeds} "
        "(benchmarks/quality.py).",
        "",
        header,
        "|---" * (len(tables) + 1) + "|",
    ]
    for method in methods:
        cells = [
            mean_std([r["balanced_accuracy"] for r in rows if r["table"] == t and r["method"] == method])
            for t in tables
        ]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines += ["", f"Total time: {time.perf_counter() - started:.0f} s."]
    args.out.mkdir(parents=True, exist_ok=True)
    kind = "_ablations" if args.ablations else "_variants" if variants else ""
    suffix = kind + ("_quick" if args.quick else "")
    with open(args.out / f"quality{suffix}.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (args.out / f"quality{suffix}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
