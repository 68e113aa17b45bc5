"""No silent wrong result, one line instead of a traceback."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from inprocess import run_app
from tiny_run import feature_table

from imbalanced.data.in_memory import Splits, check_finite_features
from imbalanced.data.tables.encoding import FeatureEncoding
from imbalanced.data.tables.table_files import class_names_of, read_table
from imbalanced.errors import UserError
from imbalanced.longtail.losses import CrossEntropy, Focal
from imbalanced.runs.resume import check_restored_settings, check_run_dir, setting_differences
from imbalanced.runs.safeguards import NonFiniteLossGuard

QUIET_APP = ["+trainer.enable_progress_bar=false"]


# ---- eval refuses data that changed since training --------------------------------------
def test_eval_refuses_a_rebuilt_split_that_differs_from_training(
    real_checkpoint, tmp_path, monkeypatch, capsys
):
    ckpt = f"ckpt_path={real_checkpoint}"
    assert run_app("eval.py", ckpt, *QUIET_APP, run_dir=tmp_path / "same", monkeypatch=monkeypatch) == 0
    changed = "+data.n_samples=330"  # the data config now gives other rows: other splits
    code = run_app(
        "eval.py", ckpt, changed, *QUIET_APP, run_dir=tmp_path / "changed", monkeypatch=monkeypatch
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "differs from training: the test (" in err
    assert "allow_changed_data=true" in err
    assert not (tmp_path / "changed" / "metrics.json").exists()
    code = run_app(
        "eval.py",
        ckpt,
        changed,
        "allow_changed_data=true",
        *QUIET_APP,
        run_dir=tmp_path / "allowed",
        monkeypatch=monkeypatch,
    )
    assert code == 0 and (tmp_path / "allowed" / "metrics.json").exists()


@pytest.mark.slow
def test_eval_refuses_a_training_file_whose_rows_were_reordered(tmp_path, monkeypatch, capsys):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=150),
            "b": rng.normal(size=150),
            "label": rng.choice(["x", "y", "z"], size=150, p=[0.6, 0.3, 0.1]),
        }
    )
    path = tmp_path / "train.csv"
    frame.to_csv(path, index=False)
    code = run_app(
        "train.py",
        "data=tabular",
        f"data.path={path}",
        "data.target=label",
        "trainer.max_epochs=1",
        "callbacks.progress_bar.refresh_rate=0",
        run_dir=tmp_path / "run",
        monkeypatch=monkeypatch,
    )
    assert code == 0
    ckpt = f"ckpt_path={tmp_path / 'run' / 'checkpoints' / 'last.ckpt'}"
    frame.sample(frac=1.0, random_state=1).to_csv(path, index=False)  # same rows, another order
    code = run_app("eval.py", ckpt, *QUIET_APP, run_dir=tmp_path / "eval", monkeypatch=monkeypatch)
    assert code == 2
    assert "the file changed since training" in capsys.readouterr().err


# ---- duplicate header names ---------------------------------------------------------------
@pytest.mark.parametrize("header", ["a,b,label,label", "a,a,label", "label,a,b,a"])
def test_duplicate_header_names_are_refused(header, tmp_path):
    path = tmp_path / "t.csv"
    width = header.count(",") + 1
    path.write_text(header + "\n" + "\n".join(",".join(["1"] * width) for _ in range(3)) + "\n")
    duplicated = sorted({c for c in header.split(",") if header.split(",").count(c) > 1})
    with pytest.raises(UserError, match=rf"duplicated column names {duplicated!r}".replace("[", r"\[")):
        read_table(path)


def test_distinct_header_names_with_dots_pass(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,a.1,label\n1,2,x\n")
    assert list(read_table(path).columns) == ["a", "a.1", "label"]


# ---- float32 overflow ---------------------------------------------------------------------
def test_values_that_overflow_float32_are_refused_after_the_cast():
    frame = pd.DataFrame({"a": [1.0, 1e39, 2.0], "b": [0.0, 1.0, 2.0]})
    encoding = FeatureEncoding.fit(frame)  # finite in float64: passes the first check
    with pytest.raises(UserError, match=r"column 'a' has 1 value\(s\) too large for float32"):
        encoding.transform(frame, "data.path=t.csv")
    x = np.array([[1.0], [1e39]])
    splits = Splits(x[:1], np.zeros(1, int), x[1:], np.zeros(1, int), x[:1], np.zeros(1, int), ["a"], ["f"])
    with pytest.raises(UserError, match=r"the val split has NaN/inf inputs as float32 in column\(s\)"):
        check_finite_features(splits)


def test_predict_refuses_an_overflowing_value(real_checkpoint, tmp_path, monkeypatch, capsys):
    table = feature_table(tmp_path / "rows.csv")
    table.write_text(table.read_text().replace("\n1,", "\n1e39,", 1))
    code = run_app(
        "predict.py",
        f"ckpt_path={real_checkpoint}",
        f"data.path={table}",
        *QUIET_APP,
        run_dir=tmp_path / "run",
        monkeypatch=monkeypatch,
    )
    assert code == 2
    assert "column 'x0' has 1 value(s) too large for float32" in capsys.readouterr().err


# ---- eval/predict check their settings as train does ------------------------------------
@pytest.mark.parametrize(
    ("script", "override", "message"),
    [
        ("predict.py", "posthoc_tau=nan", "posthoc_tau=nan must be a number >= 0"),
        ("eval.py", "posthoc_tau=-1", "posthoc_tau=-1 must be a number >= 0"),
        ("eval.py", "data.eval_batch_size=0", "data.eval_batch_size=0 is invalid; allowed: an integer >= 1"),
        ("predict.py", "trainer.precision=bf16-true", "trainer.precision=bf16-true is not supported"),
    ],
)
def test_eval_and_predict_validate_settings_like_train(
    script, override, message, real_checkpoint, tmp_path, monkeypatch, capsys
):
    # predict.py reads a file; eval.py re-splits the checkpoint's (synthetic) data, which takes no path
    data = [f"data.path={feature_table(tmp_path / 'rows.csv')}"] if script == "predict.py" else []
    code = run_app(
        script,
        f"ckpt_path={real_checkpoint}",
        *data,
        override,
        *QUIET_APP,
        run_dir=tmp_path / "run",
        monkeypatch=monkeypatch,
    )
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.count("\n") == 1


# ---- resuming with changed optimizer settings ---------------------------------------------
def test_resume_with_a_changed_optimizer_setting_is_refused(real_checkpoint, tmp_path, monkeypatch, capsys):
    code = run_app(
        "train.py",
        f"ckpt_path={real_checkpoint}",
        "data.n_samples=300",
        "trainer.max_epochs=2",
        "optimizer.lr=0.05",
        "callbacks.progress_bar.refresh_rate=0",
        run_dir=tmp_path / "run",
        monkeypatch=monkeypatch,
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "optimizer.lr: 0.001 -> 0.05" in err
    assert not list((tmp_path / "run").glob("checkpoints/*.ckpt"))


def test_setting_differences_whatever_the_shape():
    assert setting_differences({"lr": 1, "betas": [0.9, 0.99]}, {"lr": 1, "betas": [0.9, 0.999]}, "o") == [
        "o.betas: [0.9, 0.99] -> [0.9, 0.999]"
    ]
    assert setting_differences("none", "cosine", "scheduler") == ["scheduler: 'none' -> 'cosine'"]
    assert setting_differences({"a": {"b": 1}}, {"a": {"b": 1, "c": 2}}, "x") == ["x.a.c: None -> 2"]
    assert setting_differences({"lr": 0.1}, {"lr": 0.1}, "o") == []


def test_resume_refuses_restored_settings_that_only_one_side_has():
    adamw = {"_target_": "torch.optim.AdamW", "lr": 0.001}
    cosine = {"_target_": "imbalanced.optimization.cosine", "warmup_epochs": 0}
    check_restored_settings(
        "c.ckpt", {"optimizer": adamw, "scheduler": None}, {"optimizer": dict(adamw), "scheduler": None}
    )  # nothing changed
    # a checkpoint without a scheduler setting, resumed with one (and the reverse): both refused
    with pytest.raises(UserError, match=r"ckpt_path=c.ckpt .*\(scheduler: None -> \{"):
        check_restored_settings("c.ckpt", {"optimizer": adamw}, {"optimizer": adamw, "scheduler": cosine})
    refused = (
        r"\(scheduler: \{.*\} -> None as checkpoint -> now\); a resumed run continues with the "
        r"optimizer state of the checkpoint, so these would not apply\. allowed: the settings of the "
        r"run being resumed \(see its \.hydra/config\.yaml\), or a fresh run without ckpt_path$"
    )
    with pytest.raises(UserError, match=refused):
        check_restored_settings("c.ckpt", {"optimizer": adamw, "scheduler": cosine}, {"optimizer": adamw})
    # every change is listed, one after the other
    with pytest.raises(UserError, match=r"\(optimizer.lr: 0.001 -> 0.01; scheduler.warmup_epochs: 0 -> 2 "):
        check_restored_settings(
            "c.ckpt",
            {"optimizer": adamw, "scheduler": cosine},
            {"optimizer": {**adamw, "lr": 0.01}, "scheduler": {**cosine, "warmup_epochs": 2}},
        )


def test_a_fresh_run_refuses_a_run_directory_that_holds_checkpoints(tmp_path):
    from omegaconf import OmegaConf

    fresh = OmegaConf.create({"ckpt_path": None, "paths": {"output_dir": str(tmp_path)}})
    check_run_dir(fresh)  # nothing there yet
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "notes.txt").write_text("not a checkpoint")
    check_run_dir(fresh)
    for name in ("last.ckpt", "epoch=1-step=4.ckpt"):
        (tmp_path / "checkpoints" / name).write_bytes(b"")
    with pytest.raises(UserError) as error:
        check_run_dir(fresh)
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert str(error.value) == (
        f"hydra.run.dir={tmp_path} already holds checkpoints ['epoch=1-step=4.ckpt', 'last.ckpt']; "
        f"allowed: a new run directory, or resume that run with ckpt_path={last}"
    )
    check_run_dir(OmegaConf.merge(fresh, {"ckpt_path": str(last)}))  # resuming that run in place


# ---- labels that differ only by whitespace ------------------------------------------------
def test_labels_differing_only_by_whitespace_are_refused():
    with pytest.raises(UserError, match=r"labels \[\['cat', 'cat '\], \[' dog', 'dog'\]\] differ only by"):
        class_names_of(pd.Series(["cat", "cat ", "dog", " dog", "cat"]))
    assert class_names_of(pd.Series(["cat", "dog"])) == ["cat", "dog"]


# ---- one line instead of a traceback -----------------------------------------------------
def test_batch_size_one_with_batch_norm_is_refused_before_training(compose_cfg):
    from imbalanced.from_config import build_datamodule, build_model

    def build(*overrides):
        cfg = compose_cfg("data.n_samples=300", *overrides)
        datamodule = build_datamodule(cfg)
        datamodule.setup("fit")
        return build_model(cfg, datamodule)

    with pytest.raises(
        UserError, match=r"data.batch_size=1 is invalid with this backbone \(MLP\), which has Batch"
    ):
        build("data.batch_size=1", "model.backbone.batch_norm=true")
    build("data.batch_size=1", "model.backbone.batch_norm=false")  # no BatchNorm: batches of one train
    build("data.batch_size=2", "model.backbone.batch_norm=true")


def _cut_where_torch_raises(data: bytes, kind: type) -> bytes:
    """A truncation of `data` at which plain torch.load raises `kind` (ValueError: a traceback before)."""
    import io

    for size in range(0, len(data), max(len(data) // 200, 1)):
        try:
            torch.load(io.BytesIO(data[:size]), weights_only=False)  # our own file: safe to unpickle
        except kind:
            return data[:size]
        except Exception:  # noqa: BLE001 - another error type at this size
            continue
    raise AssertionError(f"no truncation raises {kind.__name__}")


@pytest.mark.parametrize("script", ["eval.py", "predict.py"])
@pytest.mark.parametrize("content", ["truncated", "cut_mid_record", "text", "tensor"])
def test_a_broken_checkpoint_is_one_error_line(
    script, content, real_checkpoint, tmp_path, monkeypatch, capsys
):
    path = tmp_path / "bad.ckpt"
    if content == "truncated":
        path.write_bytes(real_checkpoint.read_bytes()[:4000])
    elif content == "cut_mid_record":
        path.write_bytes(_cut_where_torch_raises(real_checkpoint.read_bytes(), ValueError))
    elif content == "text":
        path.write_text("not a checkpoint\n")
    else:
        torch.save({"weight": torch.ones(3)}, path)
    table = feature_table(tmp_path / "rows.csv")
    data = "data.path" if script == "predict.py" else "data.test_path"
    code = run_app(
        script,
        f"ckpt_path={path}",
        f"{data}={table}",
        *QUIET_APP,
        run_dir=tmp_path / "run",
        monkeypatch=monkeypatch,
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"error: ckpt_path={path}") and err.count("\n") == 1


def test_predict_into_a_directory_fails_before_predicting(real_checkpoint, tmp_path, monkeypatch, capsys):
    table = feature_table(tmp_path / "rows.csv")
    code = run_app(
        "predict.py",
        f"ckpt_path={real_checkpoint}",
        f"data.path={table}",
        f"output_path={tmp_path}",
        *QUIET_APP,
        run_dir=tmp_path / "run",
        monkeypatch=monkeypatch,
    )
    assert code == 2
    assert f"output_path={tmp_path} is a directory" in capsys.readouterr().err


# ---- a batch whose targets all have class weight 0 ---------------------------------------
@pytest.mark.parametrize("loss", [CrossEntropy(), CrossEntropy(reduction="none"), Focal(gamma=2.0)])
def test_a_batch_of_zero_weight_classes_gives_zero_loss_not_nan(loss):
    logits = torch.randn(4, 3, requires_grad=True)
    targets = torch.tensor([0, 0, 2, 2])
    weights, counts = torch.tensor([0.0, 1.0, 0.0]), torch.tensor([10.0, 5.0, 1.0])
    value = loss(logits, targets, weights, counts)
    if loss.reduction == "none":
        value = loss.normalize(value, targets, weights)
    value.backward()
    assert value.item() == 0.0
    assert torch.isfinite(logits.grad).all() and not logits.grad.any()
    mixed = torch.tensor([0, 1, 2, 1])  # with weighted targets: PyTorch's weighted mean, unchanged
    expected = torch.nn.functional.cross_entropy(logits, mixed, weight=weights)
    if isinstance(loss, CrossEntropy) and loss.reduction == "mean":
        assert loss(logits, mixed, weights, counts).item() == pytest.approx(expected.item(), rel=1e-6)


def test_the_nan_guard_names_zero_weight_batches():
    module = torch.nn.Linear(2, 3)
    module.class_weights = torch.tensor([0.0, 1.0, 0.0])
    module.class_names = ["a", "b", "c"]
    guard = NonFiniteLossGuard()
    guard._batch = (torch.zeros(2, 2), torch.tensor([0, 2]))
    trainer = SimpleNamespace(optimizers=[], global_step=3)
    text = guard._diagnose(trainer, module)
    assert "every sample of this batch has class weight 0 (classes ['a', 'c'])" in text


def test_a_multirun_with_invalid_jobs_ends_with_one_error_line(tmp_path, monkeypatch, capsys):
    code = run_app(
        "train.py",
        "-m",
        "data.n_samples=-5,-6",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        run_dir=tmp_path / "unused",
        monkeypatch=monkeypatch,
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: 2 job(s) of the sweep failed on their settings: job 0 (data.n_samples=-5)")
    assert "data.n_samples=-6 is invalid" in last
    assert "| failed |" in (tmp_path / "sweep" / "summary.md").read_text()


# ---- the terminal: one line per message, no advertising --------------------------------------------
def test_lightning_messages_are_printed_once_and_tips_dropped(real_checkpoint, tmp_path, monkeypatch):
    import logging

    code = run_app(
        "eval.py",
        f"ckpt_path={real_checkpoint}",
        *QUIET_APP,
        run_dir=tmp_path / "run",
        monkeypatch=monkeypatch,
    )
    assert code == 0
    assert not [h for h in logging.getLogger("lightning").handlers if type(h) is logging.StreamHandler]
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    tip = rank_zero.makeRecord(rank_zero.name, logging.INFO, "x", 1, "💡 Tip: try installing x", (), None)
    other = rank_zero.makeRecord(rank_zero.name, logging.INFO, "x", 1, "GPU available: False", (), None)
    assert not rank_zero.filter(tip) and rank_zero.filter(other)
