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
  `matmul_precision`) by the code that reads them; the trainer settings by Lightning itself (a
  Trainer is built from them: precision, accelerator and devices of this machine), its message
  shown as one line; and the launch (Hydra multirun with a DDP launcher that re-runs the script is
  refused; a fixed run directory under torchrun/srun).
"""

from __future__ import annotations

import difflib
import inspect
import logging
import os
from collections.abc import Mapping
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from imbalanced.errors import UserError, unwrap_user_errors
from imbalanced.from_config import build_datamodule, check_model_config
from imbalanced.longtail.techniques import check_techniques, posthoc_tau
from imbalanced.longtail.weights import resolve_strategy
from imbalanced.optimization import KEYS_READ_BY_THE_TEMPLATE, check_optimization
from imbalanced.runs.budget import uses_budget
from imbalanced.targets import accepted_parameters, import_target, required_parameters
from imbalanced.value_checks import SEED_MAX, check_file, check_int
from imbalanced.value_checks import show as _show

HYDRA_KEYS = {"_target_", "_recursive_", "_convert_", "_partial_", "_args_"}
# `*-true` half precision casts every float buffer: the class counts (exact integers) would be
# rounded above 2048 (fp16) or 256 (bf16), and the weights with them; mixed keeps them float32.
HALF_TRUE_PRECISIONS = {"16-true": 2048, "bf16-true": 256}


# ---- targets: importable, known keys, required values ------------------------------------------
def check_target_node(key: str, node: Mapping[str, Any]) -> None:
    target = import_target(key, node.get("_target_"))
    accepted = accepted_parameters(target)
    if accepted is None:
        return
    accepted = (accepted - {"self"}) | set(KEYS_READ_BY_THE_TEMPLATE.get(key, ()))
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
        cause = str(error.__cause__ or error).strip().splitlines()
        raise UserError(f"{key} cannot be built from its settings: {cause[0] if cause else error}") from None


def _check_backbone(backbone: DictConfig) -> None:
    """Build the backbone from its config, with a small stand-in (2) for each required integer the
    config leaves to the data (sizes such as the number of classes or input features)."""
    target = import_target("model.backbone", backbone.get("_target_"))
    try:
        parameters = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return
    missing = (required_parameters(target) or set()) - set(backbone.keys())
    if any(parameters[name].annotation not in (int, "int") for name in missing):
        return  # needs more than a size from the data: built and checked when the model is built
    _build("model.backbone", lambda: instantiate(backbone, **dict.fromkeys(missing, 2)))


def _check_objects(cfg: DictConfig) -> None:
    if cfg.get("class_weights") is not None:
        resolve_strategy(OmegaConf.to_container(cfg.class_weights, resolve=True))
    # train.py only: eval.py / predict.py hold data overrides, completed from the checkpoint
    if isinstance(cfg.get("data"), DictConfig) and cfg.get("class_weights") is not None:
        _build("data", lambda: build_datamodule(cfg))
    if isinstance(cfg.get("model"), DictConfig):
        check_model_config(cfg.model)
        backbone = cfg.model.get("backbone")
        if isinstance(backbone, DictConfig) and "_target_" in backbone:
            _check_backbone(backbone)
    optimizer, scheduler = (
        OmegaConf.to_container(cfg[k], resolve=True) if cfg.get(k) is not None else None
        for k in ("optimizer", "scheduler")
    )
    max_epochs = OmegaConf.select(cfg, "trainer.max_epochs", default=None)
    if uses_budget(cfg):  # the length comes from the data (runs/budget.py); any length checks the schedule
        max_epochs = cfg.budget.max_epochs
    check_optimization(optimizer, scheduler, max_epochs)


# ---- trainer -----------------------------------------------------------------------------------
def _check_trainer(trainer: DictConfig) -> None:
    """The values Lightning accepts and then misuses, the precisions this template refuses, then
    Lightning's own checks: a Trainer is built from the settings (no callbacks, no logger)."""
    if trainer.get("max_epochs") is not None:  # Lightning takes 0 and trains nothing
        check_int("trainer.max_epochs", trainer.max_epochs, minimum=1, extra=(-1,))
    for key in ("log_every_n_steps", "accumulate_grad_batches", "check_val_every_n_epoch"):
        if trainer.get(key) is not None:
            check_int(f"trainer.{key}", trainer.get(key), minimum=1)
    if trainer.get("precision") in HALF_TRUE_PRECISIONS:
        mixed = str(trainer.precision).replace("-true", "-mixed")
        raise UserError(
            f"trainer.precision={trainer.precision} is not supported: it casts the class-count and "
            f"class-weight buffers to half precision, so counts above "
            f"{HALF_TRUE_PRECISIONS[trainer.precision]} would be rounded; use trainer.precision={mixed} "
            "(the same speed-up for the matmuls, with float32 weights)"
        )
    quiet = logging.getLogger("lightning.pytorch")  # its "GPU available" lines belong to the real run
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        # paths (`${paths.output_dir}`) are not Lightning's to check, and resolve only in a run
        plain = OmegaConf.to_container(trainer, resolve=False)
        settings = {k: v for k, v in plain.items() if "${" not in str(v)}
        off = {"callbacks": [], "logger": False, "enable_checkpointing": False}
        _build("trainer", lambda: instantiate({**settings, **off}))
    finally:
        quiet.setLevel(level)


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
    _check_objects(cfg)
    _check_launch(cfg)
