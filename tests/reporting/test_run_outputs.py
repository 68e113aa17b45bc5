"""What a run leaves behind: plots, the per-class table, logger files; presets compose and run."""

from __future__ import annotations

import os

import pytest
import yaml
from inprocess import run_app
from omegaconf import OmegaConf
from png_checks import assert_png

from conftest import read_json
from imbalanced.reporting.end_of_run import PLOT_FILES, RARE_EVENT_PLOT_FILES

# any HTTP(S) request would go to a closed local port and fail fast
OFFLINE = {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": ""}


@pytest.mark.slow
def test_experiment_and_debug_presets_run_with_all_loggers_and_write_plots_table_and_logger_files(
    tmp_path, monkeypatch, capsys
):
    """One run covers: experiment=synthetic_longtail, debug=limit, logger=many (csv+tensorboard+mlflow)."""
    pytest.importorskip("tensorboard")
    pytest.importorskip("mlflow")
    for name, value in OFFLINE.items():
        monkeypatch.setenv(name, value)
    run_dir = tmp_path / "run"
    code = run_app(
        "train.py",
        "experiment=synthetic_longtail",
        "debug=limit",
        "logger=many",
        "data.n_samples=3000",
        "callbacks.progress_bar.refresh_rate=0",
        run_dir=run_dir,
        monkeypatch=monkeypatch,
    )
    stdout = capsys.readouterr().out
    assert code == 0
    assert len(read_json(run_dir / "metrics.json")["class_names"]) == 10  # the preset's 10 classes
    assert read_json(run_dir / "class_weights.json")["strategy"] == "effective_number"
    assert (run_dir / "checkpoints" / "last.ckpt").exists()

    # the per-class table, most frequent class first, one line per class
    lines = stdout.splitlines()
    start = lines.index("per-class test results (most to least frequent in training)")
    assert lines[start + 1].split() == ["class", "train", "n", "weight", "recall", "F1"]
    weights = read_json(run_dir / "class_weights.json")
    table = [line.split() for line in lines[start + 3 : start + 3 + len(weights["counts"])]]
    tested = weights["refit_with_validation"]  # the tested model trained on training + validation
    assert [int(row[1]) for row in table] == sorted(tested["counts"], reverse=True)
    assert table[0][0] == weights["class_names"][0]

    metrics = read_json(run_dir / "metrics.json")
    assert len(metrics["test/per_class_f1"]) == len(metrics["class_names"])
    assert all(0.0 <= value <= 1.0 for value in metrics["test/per_class_f1"])
    for name in PLOT_FILES:
        assert_png(run_dir / name)
    # the confusion matrix (counts) agrees with the recall torchmetrics logged: diagonal / row sum
    rows = [line.split(",") for line in (run_dir / "confusion_matrix.csv").read_text().splitlines()]
    assert rows[0][1:] == metrics["class_names"]
    counts = [[int(v) for v in row[1:]] for row in rows[1:]]
    recall = [row[i] / sum(row) for i, row in enumerate(counts)]
    assert recall == pytest.approx(metrics["test/per_class_recall"], abs=1e-6)

    events = list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert events
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    images = set()
    for event_file in events:
        accumulator = EventAccumulator(str(event_file), size_guidance={"images": 0})
        accumulator.Reload()
        images |= set(accumulator.Tags()["images"])
    assert {"plots/confusion_matrix", "plots/recall_vs_count", "plots/class_distribution"} <= images

    run_metas = [p for p in (run_dir / "mlruns").glob("*/*/meta.yaml")]
    assert len(run_metas) == 1
    mlflow_run = run_metas[0].parent
    assert yaml.safe_load(run_metas[0].read_text())["status"] == 3  # FINISHED
    logged = float((mlflow_run / "metrics" / "test" / "balanced_accuracy").read_text().split()[1])
    assert logged == pytest.approx(metrics["test/balanced_accuracy"], abs=1e-6)
    artifacts = {p.name for p in (mlflow_run / "artifacts" / "plots").iterdir()}
    assert artifacts == set(PLOT_FILES) | set(RARE_EVENT_PLOT_FILES)
    assert (run_dir / "csv" / "metrics.csv").stat().st_size > 0


def test_presets_compose(compose_cfg):
    cfg = compose_cfg("experiment=synthetic_longtail")
    assert (cfg.data.num_classes, cfg.data.imbalance_ratio) == (10, 100)
    assert cfg.class_weights._target_.endswith(".effective_number")
    assert cfg.scheduler._target_.endswith(".CosineAnnealingLR")
    assert compose_cfg("debug=fdr").trainer.fast_dev_run is True
    overfit = compose_cfg("debug=overfit")
    assert overfit.trainer.limit_train_batches == 3 and overfit.optimizer.weight_decay == 0.0
    profiler = compose_cfg("debug=profiler").trainer.profiler
    assert profiler._target_.endswith("SimpleProfiler")
    assert compose_cfg("debug=limit").trainer.limit_train_batches == 3
    # command-line overrides still win over a preset
    assert compose_cfg("experiment=synthetic_longtail", "trainer.max_epochs=2").trainer.max_epochs == 2


def test_logger_configs_compose_to_offline_local_stores(compose_cfg, tmp_path):
    cfg = compose_cfg("logger=tensorboard")
    assert list(cfg.logger) == ["tensorboard"]
    assert cfg.logger.tensorboard._target_ == "lightning.pytorch.loggers.TensorBoardLogger"
    cfg = compose_cfg("logger=mlflow")
    assert list(cfg.logger) == ["mlflow"]
    raw = OmegaConf.to_container(cfg.logger.mlflow, resolve=False)
    assert raw["tracking_uri"] == "file:${paths.output_dir}/mlruns"
    assert cfg.hydra.job.env_set.MLFLOW_DISABLE_TELEMETRY == "true"
    assert set(compose_cfg("logger=many").logger) == {"csv", "tensorboard", "mlflow"}


def test_optuna_search_preset_composes(compose_cfg):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    cfg = compose_cfg("hparams_search=optuna")
    assert cfg.hydra.sweeper._target_.endswith("OptunaSweeper")
    assert cfg.hydra.sweeper.direction == "maximize" and cfg.optimized_metric == "val/balanced_accuracy"
    assert "class_weights" in cfg.hydra.sweeper.params


def test_sweep_summary_callback_is_configured(compose_cfg):
    callback = compose_cfg().hydra.callbacks.sweep_summary
    assert callback._target_ == "imbalanced.runs.sweep_summary.SweepSummary"
    assert os.path.basename(callback.sort_by) == "balanced_accuracy"


def test_fixed_train_batches_makes_every_epoch_see_the_same_batches(compose_cfg, tmp_path):
    """debug=overfit: with the callback the limited batches repeat; without it they change per epoch."""
    import lightning as L

    from imbalanced.callbacks.fixed_batches import FixedTrainBatches
    from imbalanced.from_config import build_datamodule, build_model

    class RecordBatches(L.Callback):
        def __init__(self):
            self.seen = []

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            self.seen.append((trainer.current_epoch, batch[1].tolist()))

    def epochs(*callbacks):
        cfg = compose_cfg("data.n_samples=1500", "data.batch_size=64", f"hydra.run.dir={tmp_path}")
        datamodule = build_datamodule(cfg)
        datamodule.setup("fit")
        recorder = RecordBatches()
        trainer = L.Trainer(
            max_epochs=2,
            limit_train_batches=2,
            limit_val_batches=0,
            logger=False,
            callbacks=[*callbacks, recorder],
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            use_distributed_sampler=False,
            accelerator="cpu",
            devices=1,
        )
        trainer.fit(build_model(cfg, datamodule), datamodule=datamodule)
        return [[labels for epoch, labels in recorder.seen if epoch == e] for e in range(2)]

    fixed = epochs(FixedTrainBatches())
    assert len(fixed[0]) == 2 and fixed[0] == fixed[1]
    shuffled = epochs()
    assert shuffled[0] != shuffled[1]
    assert compose_cfg("debug=overfit").callbacks.fixed_train_batches._target_.endswith("FixedTrainBatches")
