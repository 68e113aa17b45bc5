"""Fast start, counting without loading samples, sparse logging, compile, device placement."""

from __future__ import annotations

import csv
import math
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import imbalanced.data.in_memory as base
from conftest import FAST, ROOT
from imbalanced.classifier import ImbalancedClassifier
from imbalanced.data.in_memory_batches import (
    IndexBatchSampler,
    TensorBatchDataset,
    batch_loader,
    place_dataset,
)
from imbalanced.data.tables.synthetic import SyntheticDataModule
from imbalanced.errors import UserError
from imbalanced.runs.runtime import apply_runtime_settings, compile_options, strip_compile_prefix
from imbalanced.sparse_logging import SparseLossLog

# Runs train.py's Hydra entry point with the given argv, then reports which heavy modules got imported.
IMPORT_PROBE = """
import runpy, sys
sys.argv = ["train.py", *sys.argv[1:]]
try:
    runpy.run_path("train.py", run_name="__main__")
except SystemExit:
    pass
heavy = sorted(m for m in ("torch", "lightning", "torchmetrics", "sklearn") if m in sys.modules)
print("HEAVY=" + ",".join(heavy))
"""


@pytest.mark.parametrize("argv", [["--cfg", "job"], ["--help"]])
def test_cfg_job_and_help_do_not_import_torch(argv: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE, *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": ""},
    )
    assert result.returncode == 0, result.stderr
    if argv == ["--cfg", "job"]:
        assert "matmul_precision: high" in result.stdout  # it did print the composed config
    assert "HEAVY=\n" in result.stdout, result.stdout.splitlines()[-1]


def test_setup_counts_from_labels_without_getitem(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    class CountingDataset(TensorBatchDataset):
        def __getitem__(self, index):
            calls.append(index)
            return super().__getitem__(index)

    monkeypatch.setattr(base, "TensorBatchDataset", CountingDataset)
    datamodule = SyntheticDataModule(n_samples=3000, class_weights={"strategy": "balanced"})
    datamodule.setup("fit")
    assert calls == []
    expected = np.bincount(datamodule.splits.y_train, minlength=datamodule.num_classes)
    np.testing.assert_array_equal(datamodule.class_counts, expected)
    next(iter(datamodule.train_dataloader()))  # the same class is really the one serving batches
    assert len(calls) == 1


class FakeModule:
    """What SparseLossLog needs from a LightningModule: trainer settings, global_step, log()."""

    def __init__(self, every: int) -> None:
        self._trainer = SimpleNamespace(log_every_n_steps=every)
        self.global_step = 0
        self.logged: list[tuple[str, float, dict]] = []

    def log(self, name: str, value: torch.Tensor, **kwargs) -> None:
        self.logged.append((name, float(value), kwargs))


def test_sparse_loss_log_logs_window_and_epoch_means() -> None:
    module, tracker = FakeModule(every=4), SparseLossLog("train/loss")
    losses = [float(i) for i in range(10)]
    for value in losses:
        tracker.step(module, torch.tensor(value))
        module.global_step += 1
    tracker.log_epoch(module)
    steps = [(n, v) for n, v, _ in module.logged if n == "train/loss_step"]
    # logged at global steps 3 and 7 (Lightning's (step + 1) % every == 0), each the window's mean
    assert steps == [("train/loss_step", np.mean(losses[0:4])), ("train/loss_step", np.mean(losses[4:8]))]
    epoch = [(v, kw) for n, v, kw in module.logged if n == "train/loss_epoch"]
    assert epoch[0][0] == pytest.approx(np.mean(losses)) and epoch[0][1]["sync_dist"] is True
    module.logged.clear()
    tracker.log_epoch(module)  # nothing accumulated: nothing logged
    assert module.logged == []


def test_training_logs_sparse_loss_and_on_device_is_noop_on_cpu(compose_cfg, tmp_path) -> None:
    from imbalanced.tasks.train import train

    cfg = compose_cfg(
        *FAST, "trainer.log_every_n_steps=4", "data.on_device=true", f"paths.output_dir={tmp_path}"
    )
    with pytest.warns(UserWarning, match="data.on_device=true has no effect on a CPU trainer"):
        report = train(cfg)
    assert 0.0 <= report["test/balanced_accuracy"] <= 1.0
    rows = list(csv.DictReader((tmp_path / "csv" / "metrics.csv").open()))
    step_rows = [r for r in rows if r.get("train/loss_step")]
    epoch_rows = [r for r in rows if r.get("train/loss_epoch")]
    # 2100 training rows / batch 256 = 9 steps per epoch, 2 epochs: logged at steps 3, 7, 11, 15
    assert [int(r["step"]) for r in step_rows] == [3, 7, 11, 15]
    assert len(epoch_rows) == 2
    assert all(math.isfinite(float(r["train/loss_step"])) for r in step_rows)


def test_place_dataset_moves_once_to_the_trainers_device() -> None:
    dataset = TensorBatchDataset(torch.randn(10, 3), torch.arange(10))
    trainer = SimpleNamespace(strategy=SimpleNamespace(root_device=torch.device("meta")))
    assert place_dataset(dataset, trainer, on_device=False) is dataset
    placed = place_dataset(dataset, trainer, on_device=True)
    assert placed.device.type == "meta" and placed.labels.device.type == "meta"
    assert place_dataset(placed, trainer, on_device=True) is placed  # already there: no copy
    x, y = placed[torch.tensor([1, 2])]  # CPU index vectors (any sampler) are sent to the data's device
    assert x.device.type == "meta" and x.shape == (2, 3)
    sampler = IndexBatchSampler(10, 4, seed=0)
    batches = list(batch_loader(placed, sampler))  # the epoch's order goes to the device once
    assert sampler.device == placed.device and [b[0].shape[0] for b in batches] == [4, 4, 2]
    assert all(b[0].device.type == "meta" for b in batches)
    cpu_trainer = SimpleNamespace(strategy=SimpleNamespace(root_device=torch.device("cpu")))
    with pytest.warns(UserWarning, match="no effect on a CPU trainer"):
        assert place_dataset(dataset, cpu_trainer, on_device=True) is dataset


def test_index_batches_shard_across_ddp_ranks() -> None:
    def shards(pad: bool) -> list[list[int]]:
        return [
            torch.cat(
                list(IndexBatchSampler(103, 16, shuffle=True, seed=1, rank=r, world_size=2, pad=pad))
            ).tolist()
            for r in range(2)
        ]

    train = shards(pad=True)
    assert len(train[0]) == len(train[1]) == 52 and set(train[0]) | set(train[1]) == set(range(103))
    evaluation = shards(pad=False)
    assert sorted(evaluation[0] + evaluation[1]) == list(range(103))  # every sample exactly once


def _model(**kwargs) -> ImbalancedClassifier:
    torch.manual_seed(0)
    return ImbalancedClassifier(
        num_classes=3,
        backbone={"_target_": "imbalanced.models.MLP", "hidden_sizes": [8], "in_features": 4},
        **kwargs,
    )


def test_compile_keeps_checkpoint_keys_and_loads_wrapped_checkpoints(tmp_path) -> None:
    import lightning

    plain, compiled = _model(), _model(compile={"backend": "eager"})
    assert list(plain.state_dict()) == list(compiled.state_dict())
    x = torch.randn(5, 4)
    torch.testing.assert_close(compiled(x), plain(x))
    assert "compile" not in compiled.hparams  # a run-time choice, not part of the checkpoint
    # a checkpoint written from a `torch.compile(model)` wrapper: keys carry `_orig_mod.`
    wrapped = torch.compile(plain).state_dict()
    assert all(k.startswith("_orig_mod.") for k in wrapped)
    path = tmp_path / "wrapped.ckpt"
    torch.save(
        {
            "state_dict": wrapped,
            "hyper_parameters": dict(plain.hparams),
            "pytorch-lightning_version": lightning.__version__,
        },
        path,
    )
    loaded = ImbalancedClassifier.load_from_checkpoint(path)
    torch.testing.assert_close(loaded(x), plain(x))
    assert strip_compile_prefix({"a._orig_mod.b": 1, "c": 2}) == {"a.b": 1, "c": 2}


def test_bad_compile_and_matmul_settings_are_user_errors() -> None:
    assert compile_options(False) is None and compile_options(True) == {}
    with pytest.raises(UserError, match="model.compile"):
        compile_options("yes")
    with pytest.raises(UserError, match="matmul_precision='fast'.*highest, high, medium"):
        apply_runtime_settings({"matmul_precision": "fast"})
    with pytest.raises(UserError, match="model.compile='yes'"):
        apply_runtime_settings({"model": {"compile": "yes"}})
    before = torch.get_float32_matmul_precision()
    try:
        apply_runtime_settings({"matmul_precision": "medium"})
        assert torch.get_float32_matmul_precision() == "medium"
    finally:
        torch.set_float32_matmul_precision(before)


def test_adamw_is_fused_by_default_and_the_setting_can_turn_it_off(monkeypatch) -> None:
    assert _model().configure_optimizers().defaults["fused"] is True
    unfused = _model(optimizer={"lr": 0.01, "fused": False}).configure_optimizers()
    assert unfused.defaults["fused"] is False and unfused.defaults["lr"] == 0.01

    def unsupported(params, **settings):
        raise RuntimeError(
            "`fused=True` requires all the params to be floating point Tensors of "
            "supported devices: ['cuda', 'cpu']"
        )

    monkeypatch.setattr(torch.optim, "AdamW", unsupported)
    with pytest.raises(UserError, match="optimizer.fused=true is not supported.*optimizer.fused=false"):
        _model().configure_optimizers()


def test_batches_already_on_the_device_are_not_walked_again() -> None:
    model = _model()
    batch = (torch.randn(4, 4), torch.tensor([0, 1, 2, 0]))
    assert model.transfer_batch_to_device(batch, torch.device("cpu"), 0) is batch
    moved = model.transfer_batch_to_device(batch, torch.device("meta"), 0)
    assert all(t.device.type == "meta" for t in moved)


def test_non_finite_check_reads_scalars_and_whole_tensors() -> None:
    from imbalanced.runs.safeguards import _is_finite

    assert _is_finite(torch.tensor(0.5)) and _is_finite(torch.ones(3))
    assert not _is_finite(torch.tensor(float("inf"))) and not _is_finite(torch.tensor([[float("nan")]]))
    assert not _is_finite(torch.tensor([1.0, float("nan")]))


def test_bf16_mixed_trains_and_keeps_class_statistics_float32(compose_cfg, tmp_path) -> None:
    import json

    from imbalanced.tasks.train import train

    cfg = compose_cfg(
        "data.n_samples=1500",
        "trainer.max_epochs=1",
        "trainer.precision=bf16-mixed",
        "callbacks.progress_bar.refresh_rate=0",
        f"paths.output_dir={tmp_path}",
    )
    report = train(cfg)
    assert 0.0 <= report["test/balanced_accuracy"] <= 1.0
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    assert state["class_weights"].dtype == state["class_counts"].dtype == torch.float32
    saved = json.loads((tmp_path / "class_weights.json").read_text())
    assert state["class_weights"].tolist() == pytest.approx(saved["weights"], rel=1e-6)
