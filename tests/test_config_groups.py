"""Every option of every config group composes, passes the config check and builds what needs no data.

The options are read from configs/<group>/, so a new YAML file is tested without listing it here.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from cifar_settings import cifar_needed
from hydra.utils import instantiate
from image_trees import image_tree
from omegaconf import OmegaConf
from tabular_tables import make_table
from text_examples import tiny_bert, write_texts

from conftest import CONFIG_DIR
from imbalanced.data.sampling import ClassAwareBatchSampler, validate_sampler_settings
from imbalanced.errors import UserError
from imbalanced.from_config import build_datamodule
from imbalanced.longtail.techniques import choose_class_weights
from imbalanced.longtail.weights import compute_class_weights
from imbalanced.optimization import RunLength, build_optimizer, build_scheduler
from imbalanced.runs.config_checks import check_config

COUNTS = np.array([50, 20, 8, 4, 2])  # the default data has 5 classes


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))


def _plain(node):
    return OmegaConf.to_container(node, resolve=True)


@pytest.fixture
def table(tmp_path) -> Path:
    path = tmp_path / "table.csv"
    make_table(120).to_csv(path, index=False)
    return path


def needed(group: str, option: str, table: Path) -> list[str]:
    """Settings an option requires from the user (`???` / a file)."""
    if (group, option) in (("data", "tabular"), ("experiment", "tabular")):
        return [f"data.path={table}", "data.target=label"]
    # a small folder
    if (group, option) in (("data", "image_folder"), ("experiment", "image_folder_longtail")):
        root = image_tree(table.parent / "images", {"ant": 8, "bee": 5, "cow": 4})
        return [f"data.root={root}", "data.image_size=8", "data.num_workers=0"]
    if (group, option) == ("class_weights", "manual"):
        return ["class_weights.weights=[1,2,3,4,5]"]
    if (group, option) in TEXT_OPTIONS:
        data = write_texts(table.parent / "texts.csv", {"billing": 30, "login": 15, "refund": 8})
        return [f"data.path={data}", "data.text=text", "data.target=label", "data.vocab_size=200"]
    if (group, option) == ("model", "hf_encoder"):
        return [f"model.backbone.path={tiny_bert(table.parent / 'bert')}"]
    return cifar_needed(group, option, table.parent)  # data=cifar*_lt: a tiny written CIFAR tree


HARDWARE = {
    "gpu": torch.cuda.is_available(),
    "ddp": torch.cuda.is_available(),
    "mps": torch.backends.mps.is_available(),
}
GROUPS = [
    "data",
    "model",
    "loss",
    "optimizer",
    "scheduler",
    "sampler",
    "class_weights",
    "trainer",
    "logger",
    "callbacks",
    "experiment",
    "debug",
    "hparams_search",
]
CASES = [(group, option) for group in GROUPS for option in options(group)]
# options whose config needs an optional extra to compose (README: the `optuna` extra)
EXTRA_MODULES = {
    ("hparams_search", "optuna"): "hydra_plugins.hydra_optuna_sweeper",
    # the text extra
    ("data", "text"): "tokenizers",
    ("experiment", "text_bag"): "tokenizers",
    ("experiment", "text_transformer"): "tokenizers",
    ("model", "hf_encoder"): "transformers",
}
TEXT_OPTIONS = {("data", "text"), ("experiment", "text_bag"), ("experiment", "text_transformer")}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its parent package is missing
        return False


def _case(group: str, option: str):
    module = EXTRA_MODULES.get((group, option))
    marks = (
        []
        if module is None
        else [
            pytest.mark.skipif(
                not _installed(module), reason=f"{group}={option} needs {module} (pip install -e '.[all]')"
            )
        ]
    )
    return pytest.param(group, option, marks=marks, id=f"{group}={option}")


def test_every_group_has_options():
    assert all(options(group) for group in GROUPS)
    assert {"adamw", "sgd"} <= set(options("optimizer"))
    assert {"none", "cosine", "multistep", "onecycle"} <= set(options("scheduler"))


@pytest.mark.parametrize(("group", "option"), [_case(g, o) for g, o in CASES])
def test_option_composes_and_passes_the_check(compose_cfg, table, tmp_path, group, option):
    cfg = compose_cfg(f"{group}={option}", *needed(group, option, table), f"paths.output_dir={tmp_path}")
    if group == "trainer" and not HARDWARE.get(option, True):
        with pytest.raises(
            UserError, match=r"trainer cannot be built from its settings: .*(not available|gpu backend)"
        ):
            check_config(cfg)
        return
    check_config(cfg)
    assert isinstance(build_datamodule(cfg), L.LightningDataModule)  # built, nothing loaded yet


@pytest.mark.parametrize("option", options("loss"))
def test_loss_builds_and_gives_a_finite_loss(compose_cfg, option):
    loss = instantiate(compose_cfg(f"loss={option}").loss)
    counts = COUNTS[:2] if option == "bce" else COUNTS  # bce is the two-class loss
    logits = torch.randn(8, len(counts))
    targets = torch.arange(8) % len(counts)
    value = loss(logits, targets, torch.ones(len(counts)), torch.as_tensor(counts, dtype=torch.float32))
    assert value.ndim == 0 and torch.isfinite(value)


@pytest.mark.parametrize("option", options("class_weights"))
def test_class_weight_strategy_applies_to_example_counts(compose_cfg, table, option):
    cfg = compose_cfg(f"class_weights={option}", *needed("class_weights", option, table))
    weights = compute_class_weights(COUNTS, choose_class_weights(cfg).config)  # auto: from the loss
    assert weights.shape == COUNTS.shape and np.all(np.isfinite(weights)) and np.all(weights > 0)
    if option not in ("none", "manual"):  # count-based: the rarest class weighs the most
        assert weights.argmax() == COUNTS.argmin()


SCHEDULE_CASES = [(o, s, w) for o in options("optimizer") for s in options("scheduler") for w in (0, 2)]


@pytest.mark.parametrize(
    ("optimizer", "scheduler", "warmup"),
    SCHEDULE_CASES,
    ids=[f"{o}-{s}-warmup{w}" for o, s, w in SCHEDULE_CASES],
)
def test_optimizer_and_schedule_step_on_a_tiny_module(compose_cfg, optimizer, scheduler, warmup):
    cfg = compose_cfg(f"optimizer={optimizer}", f"scheduler={scheduler}", f"scheduler.warmup_epochs={warmup}")
    module = torch.nn.Linear(3, 2)
    built = build_optimizer(_plain(cfg.optimizer), module.parameters())
    assert type(built).__name__ == cfg.optimizer._target_.rsplit(".", 1)[-1]
    length = RunLength(epochs=6, steps_per_epoch=2, total_steps=12)
    schedule = build_scheduler(_plain(cfg.scheduler), built, lambda: length)
    if scheduler == "none" and not warmup:
        assert schedule is None
        return
    steps = 12 if schedule["interval"] == "step" else 6
    lrs = []
    for _ in range(steps):
        module(torch.randn(4, 3)).sum().backward()
        built.step()
        built.zero_grad()
        lrs.append(built.param_groups[0]["lr"])
        schedule["scheduler"].step()
    assert all(math.isfinite(lr) and lr > 0 for lr in lrs)
    if warmup:  # the first epoch runs at a fraction of what the schedule gives
        assert lrs[0] < max(lrs)


@pytest.mark.parametrize("option", options("sampler"))
def test_sampler_draws_one_epoch(compose_cfg, option):
    q = validate_sampler_settings(_plain(compose_cfg(f"sampler={option}").sampler))
    if q is None:
        return
    labels = torch.as_tensor(np.repeat(np.arange(len(COUNTS)), COUNTS))
    batches = list(ClassAwareBatchSampler(labels, batch_size=16, q=q))
    assert sum(len(b) for b in batches) >= len(labels)


def test_callbacks_and_loggers_build_in_a_temporary_directory(compose_cfg, tmp_path, monkeypatch):
    pytest.importorskip("tensorboard", reason="logger=many needs the tensorboard extra")
    pytest.importorskip("mlflow", reason="logger=many needs the mlflow extra")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    cfg = compose_cfg(
        "logger=many", f"paths.output_dir={tmp_path}", "debug=overfit", "logger.mlflow.run_name=test"
    )  # ${hydra:job.name} is set by an app only
    callbacks = [instantiate(c) for c in cfg.callbacks.values()]
    assert all(isinstance(c, L.Callback) for c in callbacks) and len(callbacks) == len(cfg.callbacks)
    loggers = [instantiate(c) for c in cfg.logger.values()]
    assert {type(lg).__name__ for lg in loggers} == {"CSVLogger", "TensorBoardLogger", "MLFlowLogger"}
    profiler = instantiate(compose_cfg("debug=profiler", f"paths.output_dir={tmp_path}").trainer.profiler)
    assert type(profiler).__name__ == "SimpleProfiler"


def test_trainer_options_build_without_a_fit(compose_cfg, tmp_path):
    for option in options("trainer"):
        if HARDWARE.get(option, True):
            cfg = compose_cfg(f"trainer={option}", f"paths.output_dir={tmp_path}")
            trainer = instantiate(cfg.trainer, logger=False, callbacks=[], enable_progress_bar=False)
            assert isinstance(trainer, L.Trainer)


def test_sweep_parameters_name_real_settings(compose_cfg):
    pytest.importorskip(
        "hydra_plugins.hydra_optuna_sweeper", reason="hparams_search=optuna needs the optuna extra"
    )
    cfg = compose_cfg("hparams_search=optuna")
    for key in cfg.hydra.sweeper.params:
        group = key.split(".", 1)[0]
        assert OmegaConf.select(cfg, key) is not None or key in options(group) or key == group, key


# ---- LDAM-DRW: the recipe of Cao et al.'s code, in YAML only -------------------------------------
def ldam_drw_lr(epoch: int, base: float = 0.1) -> float:
    """The learning rate of LDAM-DRW's official code for 0-based `epoch` (cifar_train.py)."""
    epoch += 1
    if epoch <= 5:
        return base * epoch / 5
    if epoch > 180:
        return base * 0.0001
    if epoch > 160:
        return base * 0.01
    return base


def test_ldam_drw_preset_is_the_papers_recipe(compose_cfg):
    cfg = compose_cfg("experiment=ldam_drw")
    check_config(cfg)
    assert cfg.loss._target_.endswith(".LDAM") and (cfg.loss.max_margin, cfg.loss.scale) == (0.5, 30.0)
    assert cfg.model.backbone._target_.endswith(".CosineMLP")
    assert cfg.class_weights._target_.endswith(".effective_number") and cfg.class_weights.beta == 0.9999
    assert cfg.drw_start_epoch == 160 and cfg.trainer.max_epochs == 200
    optimizer = _plain(cfg.optimizer)
    assert optimizer["_target_"] == "torch.optim.SGD"
    assert (optimizer["lr"], optimizer["momentum"], optimizer["weight_decay"]) == (0.1, 0.9, 0.0002)
    module = torch.nn.Linear(2, 2)
    built = build_optimizer(optimizer, module.parameters())
    schedule = build_scheduler(_plain(cfg.scheduler), built, lambda: RunLength(200, 1, 200))
    assert schedule["interval"] == "epoch"
    for epoch in range(200):
        assert built.param_groups[0]["lr"] == pytest.approx(ldam_drw_lr(epoch), rel=1e-9), epoch
        built.step()
        schedule["scheduler"].step()


def test_warmup_schedule_resumes_from_its_state():
    def run(epochs: int, state=None):
        module = torch.nn.Linear(2, 2)
        optimizer = build_optimizer({"_target_": "torch.optim.SGD", "lr": 0.1}, module.parameters())
        config = {
            "_target_": "torch.optim.lr_scheduler.MultiStepLR",
            "milestones": [3, 5],
            "warmup_epochs": 2,
        }
        scheduler = build_scheduler(config, optimizer, lambda: RunLength(8, 1, 8))["scheduler"]
        if state is not None:  # what Lightning does on resume: optimizer, then scheduler state
            optimizer.load_state_dict(state[0])
            scheduler.load_state_dict(state[1])
        lrs = []
        for _ in range(epochs):
            lrs.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        return lrs, (optimizer.state_dict(), scheduler.state_dict())

    whole, _ = run(8)
    first, state = run(3)
    second, _ = run(5, state)
    assert first + second == pytest.approx(whole)
    assert whole == pytest.approx([0.05, 0.1, 0.1, 0.01, 0.01, 0.001, 0.001, 0.001])


# ---- one fast end-to-end run per data option (about 2 s each on a 2-core CPU) ------------------------
# cifar100_lt runs the same datamodule and run path as cifar10_lt (test_cifar_lt.py checks its layout);
# its 100-class plots make it the slowest quick test (~3.3 s), so it runs with the full suite only
FDR_DATA = [
    pytest.param(o, marks=pytest.mark.slow if o == "cifar100_lt" else _case("data", o).marks)
    for o in options("data")
]


@pytest.mark.parametrize("option", FDR_DATA)
def test_debug_fdr_runs_for_every_data_option(compose_cfg, table, tmp_path, option):
    from imbalanced.tasks.train import train

    cfg = compose_cfg(
        f"data={option}",
        "debug=fdr",
        *needed("data", option, table),
        "optimizer=sgd",
        "scheduler=cosine",
        "scheduler.warmup_epochs=1",
        f"paths.output_dir={tmp_path / 'run'}",
    )
    report = train(cfg)
    assert 0.0 <= report["test/balanced_accuracy"] <= 1.0
    # what the README says debug=fdr writes: metrics, weights and plots, no checkpoint; the model in
    # memory is the one tested
    assert not list((tmp_path / "run").rglob("*.ckpt")) and report["tested_checkpoint"] is None
    assert {"metrics.json", "class_weights.json", "confusion_matrix.png"} <= {
        p.name for p in (tmp_path / "run").iterdir()
    }


# ---- a fork adds a class-weight strategy (a function + a YAML) and an optimizer (a YAML) -----------
def squared_inverse(counts, power: float = 2.0):
    """A fork's strategy: w_c ∝ n_c^-power, mean 1."""
    raw = np.asarray(counts, dtype=np.float64) ** -power
    return raw * len(raw) / raw.sum()


def test_a_fork_adds_a_strategy_and_an_optimizer_with_yaml_only(compose_cfg, tmp_path):
    (tmp_path / "class_weights").mkdir()
    (tmp_path / "class_weights" / "squared_inverse.yaml").write_text(
        "_target_: test_config_groups.squared_inverse\n_partial_: true\npower: 2.0\n"
    )
    (tmp_path / "optimizer").mkdir()
    (tmp_path / "optimizer" / "adam.yaml").write_text(
        "_target_: torch.optim.Adam\n_partial_: true\nlr: 0.003\nbetas: [0.9, 0.99]\n"
    )
    cfg = compose_cfg(
        f"hydra.searchpath=[file://{tmp_path}]",
        "class_weights=squared_inverse",
        "class_weights.power=1.0",
        "optimizer=adam",
    )
    check_config(cfg)
    weights = compute_class_weights(COUNTS, _plain(cfg.class_weights))
    np.testing.assert_allclose(weights, compute_class_weights(COUNTS, "inverse"))
    built = build_optimizer(_plain(cfg.optimizer), torch.nn.Linear(2, 2).parameters())
    assert type(built).__name__ == "Adam" and built.defaults["betas"] == (0.9, 0.99)
    bad = compose_cfg(
        f"hydra.searchpath=[file://{tmp_path}]", "class_weights=squared_inverse", "+class_weights.alpha=1"
    )
    with pytest.raises(UserError, match="class_weights.alpha=1 is not a setting of test_config_groups"):
        check_config(bad)


@pytest.mark.slow
def test_resume_restores_the_schedule_and_refuses_another_optimizer(compose_cfg, tmp_path):
    """2 epochs, then resumed to 4: the same metrics as 4 epochs in one go (warm-up + step decay)."""
    from imbalanced.tasks.train import train

    settings = [
        "data.n_samples=1500",
        "optimizer=sgd",
        "optimizer.lr=0.05",
        "scheduler=multistep",
        "scheduler.milestones=[3]",
        "scheduler.warmup_epochs=2",
        "trainer.deterministic=true",
        "callbacks.progress_bar.refresh_rate=0",
    ]
    whole = train(compose_cfg(*settings, "trainer.max_epochs=4", f"paths.output_dir={tmp_path / 'a'}"))
    train(compose_cfg(*settings, "trainer.max_epochs=2", f"paths.output_dir={tmp_path / 'b'}"))
    last = tmp_path / "b" / "checkpoints" / "last.ckpt"
    saved = torch.load(last, map_location="cpu", weights_only=False)
    assert saved["hyper_parameters"]["scheduler"]["warmup_epochs"] == 2  # a plain dict in the hparams
    assert saved["lr_schedulers"][0]["warmup_steps"] == 2  # the LinearWarmup state
    resumed = train(
        compose_cfg(
            *settings, "trainer.max_epochs=4", f"ckpt_path={last}", f"paths.output_dir={tmp_path / 'c'}"
        )
    )
    assert resumed == whole
    with pytest.raises(
        UserError,
        match=r"optimizer=torch.optim.AdamW differs from the checkpoint's "
        r"torch.optim.SGD",
    ):
        train(
            compose_cfg(
                *[s for s in settings if not s.startswith("optimizer")],
                "trainer.max_epochs=4",
                f"ckpt_path={last}",
                f"paths.output_dir={tmp_path / 'd'}",
            )
        )


class FolderData(L.LightningDataModule):
    """A fork's datamodule whose `path` is a folder: the core must not treat it as a table file."""

    def __init__(self, path: str, batch_size: int = 32, class_weights=None, sampler=None) -> None:
        super().__init__()
        if not Path(path).is_dir():
            raise UserError(f"data.path={path!r} is invalid; allowed: a folder of images")
        self.path, self.batch_size = path, batch_size


def test_the_core_names_no_datasets_keys(compose_cfg, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "folder.yaml").write_text(
        "_target_: test_config_groups.FolderData\npath: ???\nbatch_size: 16\n"
    )
    images = tmp_path / "images"
    images.mkdir()
    check_config(compose_cfg(f"hydra.searchpath=[file://{tmp_path}]", "data=folder", f"data.path={images}"))
    with pytest.raises(UserError, match="allowed: a folder of images"):  # its own rule, before any data
        check_config(
            compose_cfg(
                f"hydra.searchpath=[file://{tmp_path}]", "data=folder", f"data.path={tmp_path / 'missing'}"
            )
        )


def test_the_default_is_fused_adamw_at_a_constant_learning_rate(compose_cfg):
    from imbalanced.optimization import DEFAULT_OPTIMIZER

    cfg = compose_cfg()
    assert _plain(cfg.optimizer) == DEFAULT_OPTIMIZER  # the module's default when none is given
    built = build_optimizer(_plain(cfg.optimizer), torch.nn.Linear(2, 2).parameters())
    assert type(built) is torch.optim.AdamW
    assert {k: built.defaults[k] for k in ("lr", "weight_decay", "fused")} == {
        "lr": 1e-3,
        "weight_decay": 1e-4,
        "fused": True,
    }
    assert build_scheduler(_plain(cfg.scheduler), built, lambda: RunLength(10, 1, 10)) is None


@pytest.mark.slow  # the recipe is checked fast above and in test_drw.py; this run (1 s) is for the full suite
def test_ldam_drw_preset_trains_end_to_end(compose_cfg, tmp_path):
    from imbalanced.tasks.train import train

    cfg = compose_cfg("experiment=ldam_drw", "data=digits", "debug=fdr", f"paths.output_dir={tmp_path}")
    assert 0.0 <= train(cfg)["test/balanced_accuracy"] <= 1.0
