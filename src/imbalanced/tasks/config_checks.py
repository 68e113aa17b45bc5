"""Checks of the composed config that need no data: they run before anything is loaded.

Every check raises `UserError` with one line naming the key, the value given and what is allowed.
Nothing here names a dataset's or a model's keys, so a fork's new datamodule, backbone, loss or
optimizer needs no change here:

- `???` values must be given; every node with a `_target_` must import, and each of its keys must
  be a parameter of the target (following `**kwargs` up the class hierarchy);
- the value rules live once, in the constructors: the cheap objects are built here, before any
  data loads (the datamodule, whose constructor checks its own settings and files and loads
  nothing; the loss, class-weight strategy and sampler; the optimizer and schedule on one dummy
  parameter; the backbone when its config alone builds it);
- the project's own top-level keys (`seed`, `ckpt_path`, `drw_start_epoch`, `posthoc_tau`,
  `matmul_precision`) by the code that reads them; Lightning's trainer settings (precision,
  accelerator and devices of this machine) and the launch (Hydra multirun with a DDP launcher that
  re-runs the script is refused; a fixed run directory under torchrun/srun).
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
from collections.abc import Mapping
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from imbalanced.checks import SEED_MAX, check_choice, check_file, check_int, check_number, fail
from imbalanced.checks import show as _show
from imbalanced.errors import UserError, unwrap_user_errors
from imbalanced.imbalance.techniques import check_techniques, posthoc_tau
from imbalanced.imbalance.weights import resolve_strategy
from imbalanced.optimization import SCHEDULE_KEYS, check_optimization
from imbalanced.tasks.budget import uses_budget

HYDRA_KEYS = {"_target_", "_recursive_", "_convert_", "_partial_", "_args_"}
PRECISIONS = (
    "32-true",
    "16-mixed",
    "bf16-mixed",
    "64-true",
    "32",
    "16",
    "64",
    "bf16",
    32,
    16,
    64,  # Lightning's aliases: "16"/"bf16" are the mixed ones
)
# `*-true` half precision casts every float buffer: the class counts (exact integers) would be
# rounded above 2048 (fp16) or 256 (bf16), and the weights with them; mixed keeps them float32.
HALF_TRUE_PRECISIONS = {"16-true": 2048, "bf16-true": 256}
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")
# keys a node may hold besides its target's parameters: the ones the template reads itself
TEMPLATE_KEYS = {"scheduler": set(SCHEDULE_KEYS)}
# groups the task passes to the model itself; the same key under `model` would be silently ignored
MODEL_GROUPS = ("loss", "optimizer", "scheduler")


# ---- targets: importable, known keys, required values ------------------------------------------
def import_target(key: str, target: Any) -> Any:
    if not isinstance(target, str) or "." not in target:
        raise fail(f"{key}._target_", target, "a dotted import path such as package.module.Class")
    module_name, _, attr = target.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as error:
        raise fail(f"{key}._target_", target, f"an importable class or function ({error})") from None


def accepted_parameters(target: Any) -> set[str] | None:
    """Keyword parameters `target(...)` accepts, following `**kwargs` up the MRO; None = anything."""
    classes = target.__mro__ if inspect.isclass(target) else (target,)
    names: set[str] = set()
    for cls in classes:
        init = cls.__init__ if inspect.isclass(cls) else cls
        if cls is object:
            return names
        try:
            params = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):
            return None
        names |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return names - {"self"}
    return None  # **kwargs all the way up


def check_target_node(key: str, node: Mapping[str, Any]) -> None:
    target = import_target(key, node.get("_target_"))
    accepted = accepted_parameters(target)
    if accepted is None:
        return
    accepted = (accepted - {"self"}) | TEMPLATE_KEYS.get(key, set())
    for name, value in node.items():
        if name not in HYDRA_KEYS and name not in accepted:
            raise UserError(
                f"{key}.{name}={_show(value)} is not a setting of {node['_target_']}; "
                f"allowed keys: {', '.join(sorted(accepted))}"
            )


def _target_nodes(value: Any, key: str = "") -> list[tuple[str, Mapping[str, Any]]]:
    """Every mapping with a `_target_`, at any depth (interpolations stay unresolved strings)."""
    if not isinstance(value, Mapping):
        return []
    nodes = [(key, value)] if "_target_" in value else []
    for name, child in value.items():
        nodes += _target_nodes(child, f"{key}.{name}" if key else str(name))
    return nodes


def _check_missing(plain: Mapping[str, Any]) -> None:
    def walk(value: Any, key: str) -> list[str]:
        if value == "???":
            return [key]
        if isinstance(value, dict):
            return [m for k, v in value.items() for m in walk(v, f"{key}.{k}" if key else str(k))]
        if isinstance(value, list):
            return [m for i, v in enumerate(value) for m in walk(v, f"{key}[{i}]")]
        return []

    missing = walk(plain, "")
    if missing:
        key = missing[0]
        raise UserError(f"{key}=??? is required; allowed: give it on the command line ({key}=VALUE)")


# ---- the cheap objects: their constructors hold the value rules ---------------------------------
def _build(key: str, build: Any) -> Any:
    """Run `build()`; a UserError raised inside Hydra's instantiate comes out as itself."""
    try:
        with unwrap_user_errors():
            return build()
    except InstantiationException as error:
        raise UserError(f"{key} cannot be built from its settings: {error.__cause__ or error}") from None


def _check_backbone(backbone: DictConfig) -> None:
    """Build the backbone when its config alone can: sizes given by the data get small stand-ins."""
    target = import_target("model.backbone", backbone.get("_target_"))
    stand_ins = {"in_features": 2, "num_classes": 2}
    try:
        required = {
            p.name
            for p in inspect.signature(target).parameters.values()
            if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        }
    except (TypeError, ValueError):
        return
    if required - set(backbone.keys()) - set(stand_ins):
        return  # needs sizes only the data knows: its constructor runs when the model is built
    given = {k: v for k, v in stand_ins.items() if k in required and k not in backbone}
    _build("model.backbone", lambda: instantiate(backbone, **given))


def _check_model(model: DictConfig) -> None:
    for group in MODEL_GROUPS:
        if group in model:
            raise UserError(
                f"model.{group}={_show(model._get_node(group)._value())} is not read: the {group} is "
                f"the `{group}` config group; allowed: {group}=OPTION (configs/{group}/) and "
                f"{group}.KEY=VALUE beside `model`, not under it"
            )
    backbone = model.get("backbone")
    if isinstance(backbone, DictConfig) and "_target_" in backbone:
        _check_backbone(backbone)


def _check_objects(cfg: DictConfig) -> None:
    from imbalanced.tasks.train import build_datamodule

    if cfg.get("class_weights") is not None:
        resolve_strategy(OmegaConf.to_container(cfg.class_weights, resolve=True))
    # train.py only: eval.py / predict.py hold data overrides, completed from the checkpoint
    if isinstance(cfg.get("data"), DictConfig) and cfg.get("class_weights") is not None:
        _build("data", lambda: build_datamodule(cfg))
    if isinstance(cfg.get("model"), DictConfig):
        _check_model(cfg.model)
    optimizer, scheduler = (
        OmegaConf.to_container(cfg[k], resolve=True) if cfg.get(k) is not None else None
        for k in ("optimizer", "scheduler")
    )
    max_epochs = OmegaConf.select(cfg, "trainer.max_epochs", default=None)
    if uses_budget(cfg):  # the length comes from the data (tasks/budget.py); any length checks the schedule
        max_epochs = cfg.budget.max_epochs
    check_optimization(optimizer, scheduler, max_epochs)


# ---- trainer -----------------------------------------------------------------------------------
def _get(node: Any, key: str) -> Any:
    value = node.get(key)
    if OmegaConf.is_config(value):
        return OmegaConf.to_container(value, resolve=True)
    return value


def _check_devices(trainer: DictConfig, accelerator: str) -> None:
    devices = _get(trainer, "devices")
    allowed = "an integer >= 1, -1 (all), 'auto', or a list of device indices"
    if devices == "auto":
        return
    if isinstance(devices, str):
        text = devices.strip()
        if text == "-1" or all(part.strip().isdigit() for part in text.split(",") if part.strip()):
            return
        raise fail("trainer.devices", devices, allowed)
    if isinstance(devices, list):
        if devices and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in devices):
            return
        raise fail("trainer.devices", devices, allowed)
    check_int("trainer.devices", devices, minimum=1, extra=(-1,) if accelerator != "cpu" else ())
    if accelerator in ("gpu", "cuda"):
        import torch

        count = torch.cuda.device_count()
        if devices > count:
            raise fail("trainer.devices", devices, f"at most the {count} GPU(s) of this machine")


def _check_accelerator(accelerator: str) -> None:
    import torch

    check_choice("trainer.accelerator", accelerator, ACCELERATORS)
    available = {
        "gpu": torch.cuda.is_available(),
        "cuda": torch.cuda.is_available(),
        "mps": torch.backends.mps.is_available(),
    }
    if not available.get(accelerator, True):
        raise UserError(
            f"trainer.accelerator={accelerator!r} is invalid here; allowed: an accelerator this "
            f"machine has (no {accelerator} found: use trainer=cpu, or trainer.accelerator=auto)"
        )


def _check_trainer(trainer: DictConfig) -> None:
    from lightning.pytorch.strategies import StrategyRegistry

    if trainer.get("max_epochs") is not None:
        check_int("trainer.max_epochs", trainer.max_epochs, minimum=1, extra=(-1,))
    if trainer.get("min_epochs") is not None:
        check_int("trainer.min_epochs", trainer.min_epochs, minimum=0)
    if trainer.get("max_steps") is not None:
        check_int("trainer.max_steps", trainer.max_steps, minimum=1, extra=(-1,))
    if "precision" in trainer:
        if trainer.precision in HALF_TRUE_PRECISIONS:
            mixed = str(trainer.precision).replace("-true", "-mixed")
            raise UserError(
                f"trainer.precision={trainer.precision} is not supported: it casts the class-count and "
                f"class-weight buffers to half precision, so counts above "
                f"{HALF_TRUE_PRECISIONS[trainer.precision]} would be rounded; use trainer.precision={mixed} "
                "(the same speed-up for the matmuls, with float32 weights)"
            )
        check_choice("trainer.precision", trainer.precision, PRECISIONS)
    accelerator = trainer.get("accelerator", "auto")
    _check_accelerator(accelerator)
    if "devices" in trainer:
        _check_devices(trainer, accelerator)
    if trainer.get("num_nodes") is not None:
        check_int("trainer.num_nodes", trainer.num_nodes, minimum=1)
    strategy = trainer.get("strategy")
    if isinstance(strategy, str):
        check_choice("trainer.strategy", strategy, ("auto", *StrategyRegistry.available_strategies()))
    for key in ("log_every_n_steps", "accumulate_grad_batches", "check_val_every_n_epoch"):
        if trainer.get(key) is not None:
            check_int(f"trainer.{key}", trainer.get(key), minimum=1)
    if trainer.get("gradient_clip_val") is not None:
        check_number("trainer.gradient_clip_val", trainer.gradient_clip_val, low=0.0)


# ---- launch ------------------------------------------------------------------------------------
def _hydra_mode_and_overrides(cfg: DictConfig) -> tuple[str | None, list[str]]:
    hydra_cfg: Any = cfg.get("hydra") if "hydra" in cfg else None
    if hydra_cfg is None:
        from hydra.core.hydra_config import HydraConfig

        if not HydraConfig.initialized():
            return None, []
        hydra_cfg = HydraConfig.get()
    mode = hydra_cfg.get("mode")
    overrides = list(OmegaConf.select(hydra_cfg, "overrides.hydra", default=[]) or [])
    return (str(mode).split(".")[-1] if mode is not None else None), overrides


def launches_processes(trainer: Mapping[str, Any]) -> bool:
    """Whether Lightning will start extra processes by re-running the script (DDP subprocess)."""
    strategy = trainer.get("strategy", "auto")
    if isinstance(strategy, str) and any(k in strategy for k in ("spawn", "fork", "notebook")):
        return False
    devices = trainer.get("devices", 1)
    if isinstance(devices, str):
        devices = -1 if devices.strip() in ("-1", "auto") else len([d for d in devices.split(",") if d])
    many = (isinstance(devices, list) and len(devices) > 1) or (isinstance(devices, int) and devices != 1)
    return bool(many or int(trainer.get("num_nodes") or 1) > 1)


def _cluster_launched() -> bool:
    """torchrun / SLURM srun start every rank themselves (no re-run of the script by Lightning)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 or int(os.environ.get("SLURM_NTASKS", "1")) > 1


def _check_launch(cfg: DictConfig) -> None:
    mode, hydra_overrides = _hydra_mode_and_overrides(cfg)
    trainer = OmegaConf.to_container(cfg.trainer, resolve=False)
    if mode == "MULTIRUN" and launches_processes(trainer) and not _cluster_launched():
        raise UserError(
            f"hydra multirun (-m) with trainer.strategy={_show(trainer.get('strategy', 'auto'))} "
            f"and trainer.devices={_show(trainer.get('devices'))} is invalid; allowed: single-process "
            "trainers in a sweep. Lightning's DDP launcher re-runs the whole command line (the sweep) "
            "in each child process; run one DDP job per setting instead, e.g. "
            "`for s in 0 1; do python train.py trainer=ddp_cpu seed=$s; done`, or sweep on a cluster "
            "with hydra/launcher=submitit_slurm (every rank started by SLURM)"
        )
    if (
        _cluster_launched()
        and mode != "MULTIRUN"
        and not any(o.startswith("hydra.run.dir=") for o in hydra_overrides)
    ):
        raise UserError(
            "hydra.run.dir is not set on a multi-process launch (WORLD_SIZE/SLURM_NTASKS > 1); "
            "allowed: an explicit hydra.run.dir=DIR shared by every rank (the default "
            "outputs/<date>/<time> may differ between ranks started a second apart)"
        )


def _check_batch_norm_batch(cfg: DictConfig) -> None:
    """BatchNorm cannot train on batches of one sample (ValueError at the first step otherwise)."""
    batch_norm = OmegaConf.select(cfg, "model.backbone.batch_norm", default=None)
    batch_size = OmegaConf.select(cfg, "data.batch_size", default=None)
    if batch_norm and batch_size == 1:
        raise UserError(
            "data.batch_size=1 is invalid with model.backbone.batch_norm=true; allowed: "
            "data.batch_size >= 2 (BatchNorm needs more than one sample per training batch), or "
            "model.backbone.batch_norm=false"
        )


# ---- keys nothing reads -------------------------------------------------------------------------
def _added_top_level_keys(hydra_cfg: Any) -> list[Any]:
    """The `+key=value` / `++key=value` overrides of a top-level key that is not a config group
    (`+experiment=x` adds a group option, `+trainer.x=1` a target's parameter, checked above)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    groups = set(hydra_cfg.runtime.choices)
    overrides = OverridesParser.create().parse_overrides(list(hydra_cfg.overrides.task))
    return [
        o
        for o in overrides
        if (o.is_add() or o.is_force_add())
        and "." not in o.key_or_group
        and o.package is None
        and o.key_or_group not in groups
    ]


def _check_unread_keys() -> None:
    """A top-level key the primary config and its groups do not declare is read by no code: a typo
    such as `+calibraton=none` would otherwise run with the default silently. The declared keys are
    those of the config composed without the adding overrides (Hydra's own composition)."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    # both set only inside a running Hydra app (a test's earlier app leaves HydraConfig behind)
    if not (HydraConfig.initialized() and GlobalHydra.instance().is_initialized()):
        return
    hydra_cfg = HydraConfig.get()
    added = _added_top_level_keys(hydra_cfg)
    if not added:
        return
    lines = {o.input_line for o in added}
    rest = [o for o in hydra_cfg.overrides.task if o not in lines]
    name = hydra_cfg.job.config_name
    base = GlobalHydra.instance().config_loader().load_configuration(name, rest, RunMode.RUN)
    declared = sorted(str(k) for k in base.keys() if k != "hydra")
    for override in added:
        key = override.key_or_group
        if key in declared:  # `++seed=3` sets a declared key
            continue
        value = override.input_line.split("=", 1)[1] if "=" in override.input_line else ""
        closest = difflib.get_close_matches(key, declared, n=1)
        allowed = f"{closest[0]}={value} (the closest key)" if closest else f"one of {', '.join(declared)}"
        raise UserError(
            f"{override.input_line} is refused: no code reads a top-level key {key!r} (not in "
            f"{name}.yaml nor its config groups); allowed: {allowed}"
        )


# ---- entry point -------------------------------------------------------------------------------
def check_config(cfg: DictConfig) -> None:
    """Raise UserError naming the first invalid setting, its value and what is valid."""
    plain = OmegaConf.to_container(cfg, resolve=False)  # interpolations stay unresolved
    plain.pop("hydra", None)
    _check_missing(plain)
    _check_unread_keys()
    if "seed" in cfg:  # eval.py / predict.py have no seed (their configs hold what they use)
        check_int("seed", cfg.get("seed"), minimum=0, maximum=SEED_MAX)
    for key, node in _target_nodes(plain):
        check_target_node(key, node)
    if isinstance(cfg.get("trainer"), DictConfig):
        _check_trainer(cfg.trainer)
    if cfg.get("ckpt_path") is not None:
        check_file("ckpt_path", cfg.ckpt_path)
    if cfg.get("loss") is not None and cfg.get("class_weights") is not None:
        check_techniques(cfg)
    elif cfg.get("posthoc_tau") is not None:  # eval.py / predict.py: null keeps the checkpoint's
        posthoc_tau(cfg)
    _check_batch_norm_batch(cfg)
    _check_objects(cfg)
    _check_launch(cfg)
