"""Validation, resume, interruption, NaN guard and reproducibility."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from inprocess import run_app
from lightning.pytorch.callbacks import Callback

from conftest import FAST, ROOT, read_json, run_cli
from imbalanced.errors import UserError
from imbalanced.runs.config_checks import check_config

# ---- validation: each invalid setting fails with one line naming key, value and what is allowed ----
INVALID = [
    (["data.n_samples=-5"], "data.n_samples=-5 is invalid; allowed: an integer >= 1"),
    (["data.num_classes=1"], "data.num_classes=1 is invalid; allowed: an integer >= 2"),
    (["data.imbalance_ratio=0.5"], "data.imbalance_ratio=0.5 is invalid; allowed: a finite number in [1"),
    (["data.profile=zipf"], "data.profile='zipf' is invalid; allowed: one of 'exponential'"),
    (["data.val_fraction=0.6", "data.test_fraction=0.5"], "data.val_fraction + data.test_fraction = 1.1"),
    (["data.batch_size=abc"], "data.batch_size='abc' is invalid; allowed: an integer >= 1"),
    (["+data.n_sample=3"], "data.n_sample=3 is not a setting of imbalanced.data.tables.synthetic.Synthetic"),
    (["class_weights=manual"], "class_weights.weights=??? is required"),
    (["class_weights=effective_number", "class_weights.beta=1.5"], "class_weights.beta=1.5 is outside"),
    (["loss.reduction=avg"], "loss.reduction='avg' is invalid; allowed: one of 'mean', 'sum', 'none'"),
    (["model.backbone.hidden_sizes=[0,4]"], "model.backbone.hidden_sizes=[0, 4] is invalid"),
    (["model.backbone.dropout=1.5"], "model.backbone.dropout=1.5 is invalid; allowed: a finite number in [0"),
    (["optimizer.lr=0"], "optimizer.lr=0 is invalid; allowed: a finite number in (0, inf)"),
    (["optimizer.weight_decay=-1"], "optimizer=AdamW rejects its settings {'lr': 0.001, 'weight_"),
    (["optimizer=sgd", "optimizer.momentum=-0.9"], "optimizer=SGD rejects its settings {'lr': 0.1,"),
    (["+optimizer.momentum=0.9"], "optimizer.momentum=0.9 is not a setting of torch.optim.AdamW"),
    (["+model.optimizer.lr=0.1"], "model.optimizer={'lr': 0.1} is not read: the optimizer is the"),
    (["+model.scheduler=cosine"], "model.scheduler='cosine' is not read: the scheduler is the"),
    (["scheduler=cosine", "scheduler.warmup_epochs=-1"], "scheduler.warmup_epochs=-1 is invalid"),
    (["scheduler=multistep", "+scheduler.interval=batch"], "scheduler.interval='batch' is invalid"),
    (["scheduler=cosine", "trainer.max_epochs=-1"], "scheduler.T_max=null means the run's length"),
    (["+scheduler.T_max=3"], "scheduler.T_max=3 is not a setting of scheduler=none"),
    (["scheduler=cosine", "+scheduler.T_0=3"], "scheduler.T_0=3 is not a setting of torch.optim.lr_sch"),
    (["trainer.max_epochs=0"], "trainer.max_epochs=0 is invalid; allowed: an integer >= 1 (or -1)"),
    (["trainer.precision=8"], "trainer cannot be built from its settings: Precision 8 is invalid. Allowed"),
    (["trainer.precision=bf16-true"], "trainer.precision=bf16-true is not supported: it casts the class"),
    (
        ["trainer.accelerator=quantum"],
        "trainer cannot be built from its settings: You selected an invalid acc",
    ),
    (["trainer.devices=0"], "trainer cannot be built from its settings: `Trainer(devices=0)` value is not"),
    (["+trainer.foo=1"], "trainer.foo=1 is not a setting of lightning.pytorch.Trainer"),
    (["seed=-1"], "seed=-1 is invalid; allowed: an integer >= 0 and <= 4294967295"),
    (["ckpt_path=/no/such/last.ckpt"], "ckpt_path='/no/such/last.ckpt' is invalid; allowed: a path to an"),
]


@pytest.mark.parametrize(("overrides", "message"), INVALID, ids=[" ".join(o) for o, _ in INVALID])
def test_invalid_setting_is_named(compose_cfg, overrides, message):
    cfg = compose_cfg(*overrides)
    with pytest.raises(UserError) as error:
        check_config(cfg)
    text = str(error.value)
    assert message in text
    assert "\n" not in text


def test_gpu_requested_without_gpu(compose_cfg):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(
        UserError, match=r"trainer cannot be built from its settings: No supported gpu backend"
    ):
        check_config(compose_cfg("trainer=gpu"))


def test_valid_defaults_and_every_option_pass(compose_cfg):
    check_config(compose_cfg())
    for option in ("none", "balanced", "inverse", "inverse_sqrt", "effective_number"):
        check_config(compose_cfg(f"class_weights={option}"))
    check_config(
        compose_cfg(
            "trainer=ddp_cpu", "trainer.max_epochs=-1", "scheduler=onecycle", "scheduler.total_steps=100"
        )
    )


def test_fresh_run_refuses_a_run_dir_with_checkpoints(compose_cfg, tmp_path):
    from imbalanced.runs.resume import check_run_dir

    cfg = compose_cfg(f"paths.output_dir={tmp_path}")
    check_run_dir(cfg)  # empty: fine
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"x")
    with pytest.raises(UserError, match=r"already holds checkpoints \['last.ckpt'\].*ckpt_path="):
        check_run_dir(cfg)


def test_invalid_setting_through_the_cli_stops_before_data(tmp_path, monkeypatch, capsys):
    # (one app run: the other invalid settings take the same path, checked by check_config above)
    code = run_app("train.py", "data.n_samples=-5", run_dir=tmp_path, monkeypatch=monkeypatch)
    err = capsys.readouterr().err
    assert code == 2, err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert errors == ["error: data.n_samples=-5 is invalid; allowed: an integer >= 1"], err
    assert not (tmp_path / "class_weights.json").exists()  # no data was loaded
    assert not (tmp_path / "checkpoints").exists()


# ---- NaN guard -------------------------------------------------------------------------------------
def test_non_finite_loss_stops_with_where_and_why(tmp_path, monkeypatch, capsys):
    code = run_app("train.py", *FAST, "optimizer.lr=1e12", run_dir=tmp_path, monkeypatch=monkeypatch)
    err = capsys.readouterr().err
    assert code == 2, err[-2000:]
    error = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(error) == 1
    assert "training loss is nan at epoch 0, batch" in error[0]
    assert "optimizer.lr=1e+12 is likely too high" in error[0]
    assert not (tmp_path / "metrics.json").exists()
    for path in (tmp_path / "checkpoints").glob("*.ckpt"):  # nothing non-finite was ever saved
        state = torch.load(path, map_location="cpu", weights_only=False)["state_dict"]
        assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


# ---- same seed, resume at an epoch boundary ---------------------------------------------------------
# refit_with_validation=false: metrics.json then scores the resumed model itself (a refit trains a
# fresh model in both runs, which would hide a resume that went wrong)
RESUME = [
    *FAST[:1],
    "callbacks.progress_bar.refresh_rate=0",
    "trainer.deterministic=true",
    "refit_with_validation=false",
]


def _popen(run_dir: Path, *overrides: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HYDRA_FULL_ERROR": "0"}
    return subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *overrides, f"hydra.run.dir={run_dir}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_same_seed_is_identical_and_resume_after_2_of_4_epochs_is_exact(compose_cfg, tmp_path):
    from imbalanced.tasks.train import train

    train(compose_cfg(*RESUME, "trainer.max_epochs=2", f"paths.output_dir={tmp_path / 'half'}"))
    half_ckpts = {p.name: p.stat().st_mtime for p in (tmp_path / "half" / "checkpoints").iterdir()}
    resumed = run_cli(
        "train.py",
        *RESUME,
        "trainer.max_epochs=4",
        f"ckpt_path={tmp_path / 'half' / 'checkpoints' / 'last.ckpt'}",
        run_dir=tmp_path / "resumed",
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    # the uninterrupted 4-epoch run (in-process: same code, same seed) ends with the same metrics: the
    # same seed gives the same run in another process (the resumed one), and resuming after epoch 2
    # changes nothing
    train(compose_cfg(*RESUME, "trainer.max_epochs=4", f"paths.output_dir={tmp_path / 'a'}"))
    assert (tmp_path / "resumed" / "metrics.json").read_text() == (
        tmp_path / "a" / "metrics.json"
    ).read_text()
    # the old run directory is untouched; the new one holds its own best and last checkpoints
    assert {p.name: p.stat().st_mtime for p in (tmp_path / "half" / "checkpoints").iterdir()} == half_ckpts
    names = sorted(p.name for p in (tmp_path / "resumed" / "checkpoints").iterdir())
    assert "last.ckpt" in names and any(n.startswith("best-") for n in names)


# ---- SIGINT during training, then resume --------------------------------------------------------
@pytest.mark.slow
def test_sigint_leaves_a_checkpoint_that_resumes(tmp_path, monkeypatch):
    run_dir = tmp_path / "interrupted"
    process = _popen(run_dir, *RESUME, "trainer.max_epochs=1000")
    deadline = time.monotonic() + 300
    while not (run_dir / "checkpoints" / "last.ckpt").exists():  # wait for the first epoch
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 130, stderr[-3000:]
    interrupted = run_dir / "checkpoints" / "interrupted.ckpt"
    last = run_dir / "checkpoints" / "last.ckpt"
    # in a training step the run saves where it stopped; in a validation pass (the signal can land in
    # one: its timing races the epoch) it saves nothing half-validated and names the last checkpoint
    # instead. Either way the message names the file that resumes
    if f"saved {interrupted}" in stderr:
        checkpoint, first_epoch = interrupted, 1
    else:
        assert f"the last checkpoint saved is {last}" in stderr, stderr[-3000:]
        assert not interrupted.exists()
        checkpoint, first_epoch = last, 0
    epoch = torch.load(checkpoint, map_location="cpu", weights_only=False)["epoch"]
    assert epoch >= first_epoch

    # the resume through train.py's entry point, in-process (the signal needed a process of its own)
    resumed = tmp_path / "resumed"
    args = (*RESUME, f"trainer.max_epochs={epoch + 2}", f"ckpt_path={checkpoint}")
    assert run_app("train.py", *args, run_dir=resumed, monkeypatch=monkeypatch) == 0
    assert "test/balanced_accuracy" in read_json(resumed / "metrics.json")
    assert f"Restored all states from the checkpoint at {checkpoint}" in (resumed / "train.log").read_text()


# ---- SIGTERM mid-epoch, in-process: the resumed run equals the uninterrupted one ----------------------
class SendSignalAt(Callback):
    """Test helper: sends `signum` to this process after batch `batch` of epoch `epoch`."""

    def __init__(self, epoch: int, batch: int, signum: int = signal.SIGTERM) -> None:
        self.epoch, self.batch, self.signum = epoch, batch, signum

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if (trainer.current_epoch, batch_idx) == (self.epoch, self.batch):
            os.kill(os.getpid(), self.signum)


@pytest.mark.slow
def test_sigterm_mid_epoch_then_resume_equals_uninterrupted(compose_cfg, tmp_path):
    from imbalanced.errors import TrainingInterrupted
    from imbalanced.tasks.train import train

    settings = [*RESUME, "trainer.max_epochs=3"]
    baseline = train(compose_cfg(*settings, f"paths.output_dir={tmp_path / 'a'}"))

    cfg = compose_cfg(
        *settings,
        f"paths.output_dir={tmp_path / 'b'}",
        "+callbacks.kill._target_=test_robustness.SendSignalAt",
        "+callbacks.kill.epoch=1",
        "+callbacks.kill.batch=3",
    )
    with pytest.raises(TrainingInterrupted, match=r"SIGTERM at epoch 1, batch (3|4);") as stop:
        train(cfg)
    assert stop.value.exit_code == 143
    interrupted = tmp_path / "b" / "checkpoints" / "interrupted.ckpt"
    # resume in place (same run directory): the earlier part's CSV log is kept, not deleted
    resumed = train(compose_cfg(*settings, f"paths.output_dir={tmp_path / 'b'}", f"ckpt_path={interrupted}"))
    assert resumed == baseline
    assert (tmp_path / "b" / "csv" / "metrics.part1.csv").is_file()
    assert (tmp_path / "b" / "csv" / "metrics.csv").is_file()
