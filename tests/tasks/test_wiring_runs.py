"""The wiring of whole runs (in-process `train.py` / `eval.py` / `predict.py`): what a user relies on
across the pieces: the best checkpoint, post-hoc tau in checkpoints, resume, eval reproducing the
run, the run's core files without any optional extra."""

from __future__ import annotations

import contextlib
import csv
import io
import math

import lightning as L
import pytest
import torch
from inprocess import run_app
from lightning.pytorch.callbacks import ModelCheckpoint
from tiny_run import feature_table
from torch.utils.data import DataLoader, Dataset

from conftest import read_json
from imbalanced.classifier import ImbalancedClassifier
from imbalanced.reporting.end_of_run import PLOT_FILES, RARE_EVENT_PLOT_FILES
from imbalanced.runs.safeguards import GracefulInterrupt, NonFiniteLossError, NonFiniteLossGuard

QUIET = ["callbacks.progress_bar.refresh_rate=0"]
QUIET_APP = ["+trainer.enable_progress_bar=false"]  # eval.py / predict.py (no callbacks group)
# without dropout: the resume test below relies on this seeded run's fifth epoch scoring below its best
RUN = [
    "data.n_samples=900",
    "trainer.max_epochs=4",
    "posthoc_tau=1",
    "class_weights=none",
    "optimizer.lr=0.003",
    "model.backbone.dropout=0.0",
    *QUIET,
]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One 4-epoch run with posthoc_tau=1; its stdout (the per-class table) is kept."""
    run_dir = tmp_path_factory.mktemp("wiring") / "run"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = run_app("train.py", *RUN, run_dir=run_dir)
    assert code == 0
    return {"dir": run_dir, "stdout": stdout.getvalue()}


def _epoch_values(run_dir, name, epochs):
    """The value logged at each training epoch (after fit, train.py validates the best model again)."""
    rows = list(csv.DictReader((run_dir / "csv" / "metrics.csv").open()))
    return {
        int(row["epoch"]): float(row[name]) for row in rows if row.get(name) and int(row["epoch"]) < epochs
    }


@pytest.mark.slow
def test_the_best_checkpoint_is_the_epoch_of_the_highest_val_balanced_accuracy(run):
    per_epoch = _epoch_values(run["dir"], "val/balanced_accuracy", 4)
    assert sorted(per_epoch) == [0, 1, 2, 3]
    best_epoch = max(per_epoch, key=lambda epoch: (per_epoch[epoch], -epoch))  # first of equal scores
    (best,) = (run["dir"] / "checkpoints").glob("best-*.ckpt")
    assert best.name == f"best-epoch{best_epoch:03d}.ckpt"
    last = torch.load(run["dir"] / "checkpoints" / "last.ckpt", weights_only=True)
    state = next(v for v in last["callbacks"].values() if "best_model_score" in v)
    assert float(state["best_model_score"]) == pytest.approx(per_epoch[best_epoch], abs=1e-6)


@pytest.mark.slow
def test_posthoc_tau_is_saved_and_eval_overrides_it(run, tmp_path, monkeypatch, capsys):
    best = next((run["dir"] / "checkpoints").glob("best-*.ckpt"))
    assert torch.load(best, weights_only=True)["posthoc_tau"] == 1.0
    assert ImbalancedClassifier.load_from_checkpoint(best, map_location="cpu").posthoc_tau == 1.0
    # eval.py rebuilds the data from the checkpoint's seed: the run's own test metrics come back
    metrics = read_json(run["dir"] / "metrics.json")
    best = run["dir"] / metrics["tested_checkpoint"]  # the refit model (a table refits)
    assert torch.load(best, weights_only=True)["posthoc_tau"] == 1.0
    assert (
        run_app(
            "eval.py", f"ckpt_path={best}", *QUIET_APP, run_dir=tmp_path / "same", monkeypatch=monkeypatch
        )
        == 0
    )
    same = read_json(tmp_path / "same" / "metrics.json")
    for key in ("test/accuracy", "test/balanced_accuracy", "test/macro_f1"):
        assert same[key] == pytest.approx(metrics[key], abs=1e-6)
    assert (
        run_app(
            "eval.py",
            f"ckpt_path={best}",
            "posthoc_tau=0",
            *QUIET_APP,
            run_dir=tmp_path / "off",
            monkeypatch=monkeypatch,
        )
        == 0
    )
    off = read_json(tmp_path / "off" / "metrics.json")
    assert off["test/per_class_recall"] != same["test/per_class_recall"]
    # predict.py: tau=0 moves predictions towards the frequent classes
    table = feature_table(tmp_path / "rows.csv", rows=200)
    predictions = {}
    for tau in ("null", "0"):
        out = tmp_path / f"predict_{tau}"
        assert (
            run_app(
                "predict.py",
                f"ckpt_path={best}",
                f"data.path={table}",
                f"posthoc_tau={tau}",
                *QUIET_APP,
                run_dir=out,
                monkeypatch=monkeypatch,
            )
            == 0
        )
        predictions[tau] = [row["prediction"] for row in csv.DictReader((out / "predictions.csv").open())]
    assert predictions["null"] != predictions["0"]
    capsys.readouterr()


@pytest.mark.slow
def test_the_core_run_files_need_no_optional_extra(run):
    """The per-class table, confusion_matrix.csv and the PNGs with the default csv logger only."""
    metrics = read_json(run["dir"] / "metrics.json")
    weights = read_json(run["dir"] / "class_weights.json")
    lines = run["stdout"].splitlines()
    start = lines.index("per-class test results (most to least frequent in training)")
    assert lines[start + 1].split() == ["class", "train", "n", "weight", "recall", "F1"]
    table = [line.split() for line in lines[start + 3 : start + 3 + len(weights["counts"])]]
    # the tested model's training rows: training + validation (the refit)
    tested = weights["refit_with_validation"]
    assert [int(row[1]) for row in table] == sorted(tested["counts"], reverse=True)
    by_name = {row[0]: row for row in table}
    for index, name in enumerate(metrics["class_names"]):
        assert float(by_name[name][3]) == pytest.approx(metrics["test/per_class_recall"][index], abs=0.001)
        assert float(by_name[name][4]) == pytest.approx(metrics["test/per_class_f1"][index], abs=0.001)
    rows = [line.split(",") for line in (run["dir"] / "confusion_matrix.csv").read_text().splitlines()]
    assert rows[0][1:] == metrics["class_names"]
    counts = [[int(v) for v in row[1:]] for row in rows[1:]]
    recall = [row[i] / sum(row) for i, row in enumerate(counts)]
    assert recall == pytest.approx(metrics["test/per_class_recall"], abs=1e-6)
    for name in (*PLOT_FILES, *RARE_EVENT_PLOT_FILES):
        data = (run["dir"] / name).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 2000


@pytest.mark.slow
def test_resume_carries_the_best_over_and_refuses_another_split(run, tmp_path, monkeypatch, capsys):
    last = run["dir"] / "checkpoints" / "last.ckpt"
    old_best = next((run["dir"] / "checkpoints").glob("best-*.ckpt"))
    old_state = next(
        v for v in torch.load(last, weights_only=True)["callbacks"].values() if "best_model_score" in v
    )
    settings = [s for s in RUN if not s.startswith("trainer.max_epochs")]
    code = run_app(
        "train.py",
        *settings,
        "trainer.max_epochs=5",
        "optimizer.lr=0.0",
        f"ckpt_path={last}",
        run_dir=tmp_path / "resumed",
        monkeypatch=monkeypatch,
    )
    # optimizer.lr differs from the run's: refused (the restored optimizer state would ignore it)
    assert code == 2 and "optimizer" in capsys.readouterr().err
    code = run_app(
        "train.py",
        *settings,
        "trainer.max_epochs=5",
        f"ckpt_path={last}",
        run_dir=tmp_path / "resumed",
        monkeypatch=monkeypatch,
    )
    assert code == 0
    new_dir = tmp_path / "resumed" / "checkpoints"
    new_last = torch.load(new_dir / "last.ckpt", weights_only=True)
    state = next(v for v in new_last["callbacks"].values() if "best_model_score" in v)
    epoch4 = _epoch_values(tmp_path / "resumed", "val/balanced_accuracy", 5)[4]
    assert epoch4 < float(old_state["best_model_score"])  # (seeded) so the best must be the carried one
    assert float(state["best_model_score"]) == pytest.approx(float(old_state["best_model_score"]), abs=1e-6)
    assert state["best_model_path"] == str(new_dir / old_best.name)  # the old best, copied into the new run
    assert (new_dir / old_best.name).read_bytes() == old_best.read_bytes()
    capsys.readouterr()
    # the checkpoint's posthoc_tau would silently win over a new value: refused
    code = run_app(
        "train.py",
        *settings,
        "trainer.max_epochs=5",
        "posthoc_tau=0.5",
        f"ckpt_path={last}",
        run_dir=tmp_path / "other_tau",
        monkeypatch=monkeypatch,
    )
    assert code == 2 and "error: posthoc_tau=0.5 differs from the checkpoint's 1.0" in capsys.readouterr().err
    code = run_app(
        "train.py",
        *settings,
        "trainer.max_epochs=5",
        "data.seed=1",
        f"ckpt_path={last}",
        run_dir=tmp_path / "other_split",
        monkeypatch=monkeypatch,
    )
    err = capsys.readouterr().err
    assert code == 2 and f"error: ckpt_path={last} was trained with" in err


# ---- no NaN model is checkpointed ------------------------------------------------------------------
class _PoisonedAfterFirstEpoch(Dataset):
    """Finite rows in epoch 0; NaN inputs once `poisoned` is set (after a checkpoint exists)."""

    def __init__(self) -> None:
        generator = torch.Generator().manual_seed(0)
        self.x = torch.randn(64, 5, generator=generator)
        self.y = torch.randint(0, 3, (64,), generator=generator)
        self.poisoned = False

    def __len__(self) -> int:
        return 64

    def __getitem__(self, index):
        x = self.x[index] * (math.nan if self.poisoned else 1.0)
        return x, self.y[index]


class _PoisonAtEpoch(L.Callback):
    def __init__(self, dataset: _PoisonedAfterFirstEpoch, epoch: int) -> None:
        self.dataset, self.epoch = dataset, epoch

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.dataset.poisoned = trainer.current_epoch >= self.epoch


def test_a_nan_loss_after_a_checkpoint_leaves_the_finite_checkpoint(tmp_path):
    dataset = _PoisonedAfterFirstEpoch()
    model = ImbalancedClassifier(
        num_classes=3, backbone={"_target_": "imbalanced.models.MLP", "hidden_sizes": [8], "in_features": 5}
    )
    checkpoints = tmp_path / "checkpoints"
    trainer = L.Trainer(
        max_epochs=3,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[
            ModelCheckpoint(dirpath=checkpoints, save_last=True),
            NonFiniteLossGuard(),
            GracefulInterrupt(dirpath=str(checkpoints)),
            _PoisonAtEpoch(dataset, epoch=1),
        ],
    )
    with pytest.raises(NonFiniteLossError, match="training loss is nan at epoch 1"):
        trainer.fit(model, train_dataloaders=DataLoader(dataset, batch_size=16))
    saved = sorted(path.name for path in checkpoints.iterdir())
    assert saved == ["epoch=0-step=4.ckpt", "last.ckpt"]  # epoch 0's; nothing written for the NaN state
    for name in saved:
        state = torch.load(checkpoints / name, weights_only=True)
        assert state["epoch"] == 0
        assert all(torch.isfinite(value).all() for value in state["state_dict"].values())
    assert all(torch.isfinite(p).all() for p in model.parameters())  # no optimizer step on the NaN loss


# ---- settings that reach the model -------------------------------------------------------------
@pytest.mark.slow
def test_model_mlp_cosine_trains_a_normed_linear_head(tmp_path, monkeypatch):
    from imbalanced.models.cosine import NormedLinear

    code = run_app(
        "train.py",
        "model=mlp_cosine",
        "loss=ldam",
        "data.n_samples=300",
        "trainer.max_epochs=1",
        *QUIET,
        run_dir=tmp_path / "run",
        monkeypatch=monkeypatch,
    )
    assert code == 0
    model = ImbalancedClassifier.load_from_checkpoint(
        tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu"
    )
    heads = [m for m in model.backbone.modules() if isinstance(m, NormedLinear)]
    assert len(heads) == 1
    with torch.no_grad():
        logits = model(torch.randn(7, 20))
    assert logits.abs().max() <= 1.0 + 1e-5  # cosine logits


def test_compile_setting_compiles_the_backbone():
    """`model.compile` must reach `torch.compile` (a no-op would pass every other test)."""
    backbone = {"_target_": "imbalanced.models.MLP", "hidden_sizes": [4], "in_features": 3}
    compiled = ImbalancedClassifier(num_classes=2, backbone=backbone, compile={"backend": "eager"})
    plain = ImbalancedClassifier(num_classes=2, backbone=backbone, compile=False)
    assert compiled.backbone._compiled_call_impl is not None  # nn.Module.compile's compiled forward
    assert plain.backbone._compiled_call_impl is None
    assert list(compiled.state_dict()) == list(plain.state_dict())  # checkpoints are the same either way


def test_weights_that_overflow_on_the_last_step_are_not_checkpointed(tmp_path, monkeypatch, capsys):
    """One step per epoch at lr=1e12: the loss of that step is finite, the weights after it are not."""
    code = run_app(
        "train.py",
        "data.n_samples=300",
        "trainer.max_epochs=1",
        "optimizer.lr=1e12",
        *QUIET,
        run_dir=tmp_path,
        monkeypatch=monkeypatch,
    )
    err = capsys.readouterr().err
    assert code == 2
    (line,) = [line for line in err.splitlines() if line.startswith("error: ")]
    assert "the model gives NaN/inf validation logits at epoch 0 (global step 1)" in line
    assert "optimizer.lr=1e+12 is too high" in line
    assert not list((tmp_path / "checkpoints").glob("*.ckpt"))
    assert not (tmp_path / "metrics.json").exists()


class _OverflowAfterLastBatch(L.Callback):
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if batch_idx == trainer.num_training_batches - 1:
            with torch.no_grad():
                next(pl_module.parameters()).fill_(math.inf)


def test_non_finite_weights_without_validation_are_not_checkpointed(tmp_path):
    dataset = _PoisonedAfterFirstEpoch()
    model = ImbalancedClassifier(
        num_classes=3, backbone={"_target_": "imbalanced.models.MLP", "hidden_sizes": [8], "in_features": 5}
    )
    trainer = L.Trainer(
        max_epochs=2,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[
            ModelCheckpoint(dirpath=tmp_path, save_last=True),
            NonFiniteLossGuard(),
            _OverflowAfterLastBatch(),
        ],
    )
    with pytest.raises(NonFiniteLossError, match="the model weights became NaN/inf at epoch 0"):
        trainer.fit(model, train_dataloaders=DataLoader(dataset, batch_size=16))
    assert not list(tmp_path.glob("*.ckpt"))


@pytest.mark.slow
def test_a_multirun_with_a_job_that_fails_while_training(tmp_path, monkeypatch, capsys):
    sweep = tmp_path / "sweep"
    code = run_app(
        "train.py",
        "-m",
        "optimizer.lr=0.003,1e12",
        "data.n_samples=300",
        "trainer.max_epochs=1",
        *QUIET,
        f"hydra.sweep.dir={sweep}",
        run_dir=tmp_path / "unused",
        monkeypatch=monkeypatch,
    )
    err = capsys.readouterr().err
    assert code != 0
    assert "Traceback" not in err
    assert (sweep / "0" / "metrics.json").exists() and not (sweep / "1" / "metrics.json").exists()
    rows = {row["job"]: row for row in csv.DictReader((sweep / "summary.csv").open())}
    assert rows["0"]["status"] == "ok" and rows["1"]["status"] == "failed"
    assert "NaN/inf" in rows["1"]["error"]
