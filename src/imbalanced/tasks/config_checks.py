"""Checks of the composed config that need no data: they run before anything is loaded.

Every check raises `UserError` with one line naming the key, the value given and what is allowed.
The checks are keyed on what is present, so new options of a group (a new datamodule, a new loss)
need no change here:

- every node with a `_target_` (data, loss, model, model.backbone, trainer, callbacks, logger) must
  import, and each of its keys must be a parameter of the target's `__init__` (following `**kwargs`
  up the class hierarchy); `???` values must be given;
- known keys are range-checked wherever they appear (sizes, fractions, probabilities, learning rate);
- the launch is checked: accelerator present on this machine, Hydra multirun with a DDP launcher
  that re-runs the script (refused), and a fixed run directory under torchrun/srun.
"""

from __future__ import annotations

import importlib
import inspect
import math
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from imbalanced.errors import UserError
from imbalanced.imbalance.losses import NORMALIZATIONS, REDUCTIONS
from imbalanced.imbalance.techniques import check_techniques, posthoc_tau
from imbalanced.imbalance.weights import validate_weight_settings

HYDRA_KEYS = {"_target_", "_recursive_", "_convert_", "_partial_", "_args_"}
SEED_MAX = 2**32 - 1  # numpy's seed range; Lightning silently picks a random seed outside it
PRECISIONS = (
    "32-true", "16-mixed", "bf16-mixed", "64-true",
    "32", "16", "64", "bf16", 32, 16, 64,  # Lightning's aliases: "16"/"bf16" are the mixed ones
)
# `*-true` half precision casts every float buffer: the class counts (exact integers) would be
# rounded above 2048 (fp16) or 256 (bf16), and the weights with them; mixed keeps them float32.
HALF_TRUE_PRECISIONS = {"16-true": 2048, "bf16-true": 256}
SCHEDULERS = ("none", "cosine")
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")


def _show(value: Any) -> str:
    if isinstance(value, (DictConfig, ListConfig)):
        value = OmegaConf.to_container(value, resolve=False)
    return repr(value) if isinstance(value, str) else str(value)


def fail(key: str, value: Any, allowed: str) -> UserError:
    """The one-line error: `key=value is invalid; allowed: ...`."""
    return UserError(f"{key}={_show(value)} is invalid; allowed: {allowed}")


# ---- value checks ------------------------------------------------------------------------------
def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_int(key: str, value: Any, minimum: int | None = None, maximum: int | None = None,
              extra: Iterable[Any] = ()) -> None:
    """An integer (integral floats such as 1e3 are accepted) within [minimum, maximum]."""
    extra = tuple(extra)
    if value in extra and not isinstance(value, bool):
        return
    allowed = "an integer" + (f" >= {minimum}" if minimum is not None else "")
    allowed += f" and <= {maximum}" if maximum is not None else ""
    allowed += f" (or {', '.join(map(str, extra))})" if extra else ""
    if not _is_number(value) or not math.isfinite(value) or float(value) != int(value):
        raise fail(key, value, allowed)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise fail(key, value, allowed)


def check_number(key: str, value: Any, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False) -> None:
    """A finite number in the interval given (open or closed at each end)."""
    left = "(" if low_open else "["
    right = ")" if high_open or high is None else "]"
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    allowed = f"a finite number in {left}{lo}, {hi}{right}"
    if not _is_number(value) or not math.isfinite(value):
        raise fail(key, value, allowed)
    if low is not None and (value < low or (low_open and value == low)):
        raise fail(key, value, allowed)
    if high is not None and (value > high or (high_open and value == high)):
        raise fail(key, value, allowed)


def check_choice(key: str, value: Any, choices: Iterable[Any]) -> None:
    choices = tuple(choices)
    if value not in choices or isinstance(value, bool):
        raise fail(key, value, "one of " + ", ".join(_show(c) for c in choices))


def check_file(key: str, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise fail(key, value, "a path to an existing file")
    path = Path(value).expanduser()
    if not path.is_file():
        raise UserError(
            f"{key}={_show(value)} is invalid; allowed: a path to an existing file "
            f"(no file at {path.resolve()})"
        )


# ---- targets: importable, known keys, required values ------------------------------------------
def _import_target(key: str, target: Any) -> Any:
    if not isinstance(target, str) or "." not in target:
        raise fail(f"{key}._target_", target, "a dotted import path such as package.module.Class")
    module_name, _, attr = target.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as error:
        raise fail(f"{key}._target_", target, f"an importable class ({error})") from None


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


def _check_target_node(key: str, node: DictConfig) -> None:
    target = _import_target(key, node.get("_target_"))
    accepted = accepted_parameters(target)
    if accepted is None:
        return
    accepted -= {"self"}
    for name in node.keys():
        if name in HYDRA_KEYS:
            continue
        if name not in accepted:
            raise UserError(
                f"{key}.{name}={_show(node._get_node(name)._value())} is not a setting of "
                f"{node._target_}; allowed keys: {', '.join(sorted(accepted))}"
            )


def _target_nodes(cfg: DictConfig) -> list[tuple[str, DictConfig]]:
    nodes: list[tuple[str, DictConfig]] = []
    for group in ("data", "loss", "model", "trainer"):
        node = cfg.get(group)
        if isinstance(node, DictConfig) and "_target_" in node:
            nodes.append((group, node))
    backbone = OmegaConf.select(cfg, "model.backbone")
    if isinstance(backbone, DictConfig) and "_target_" in backbone:
        nodes.append(("model.backbone", backbone))
    for group in ("callbacks", "logger"):
        container = cfg.get(group)
        if isinstance(container, DictConfig):
            for name in container.keys():
                node = container.get(name)
                if isinstance(node, DictConfig) and "_target_" in node:
                    nodes.append((f"{group}.{name}", node))
    return nodes


def _check_missing(cfg: DictConfig) -> None:
    def walk(value: Any, key: str) -> list[str]:
        if value == "???":
            return [key]
        if isinstance(value, dict):
            return [m for k, v in value.items() for m in walk(v, f"{key}.{k}" if key else str(k))]
        if isinstance(value, list):
            return [m for i, v in enumerate(value) for m in walk(v, f"{key}[{i}]")]
        return []

    plain = OmegaConf.to_container(cfg, resolve=False)  # interpolations stay unresolved
    plain.pop("hydra", None)
    missing = walk(plain, "")
    if missing:
        key = missing[0]
        raise UserError(f"{key}=??? is required; allowed: give it on the command line ({key}=VALUE)")


# ---- groups ------------------------------------------------------------------------------------
def _get(node: Any, key: str) -> Any:
    value = node.get(key)
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    return value


def _check_data(data: DictConfig) -> None:
    from imbalanced.data.profiles import PROFILES

    present = set(data.keys())

    def when(key: str, check: Callable[[str, Any], None]) -> None:
        if key in present and data.get(key) is not None:
            check(f"data.{key}", _get(data, key))

    when("n_samples", lambda k, v: check_int(k, v, minimum=1))
    when("n_features", lambda k, v: check_int(k, v, minimum=2))
    when("num_classes", lambda k, v: check_int(k, v, minimum=2))
    when("n_informative", lambda k, v: check_int(k, v, minimum=2))
    when("imbalance_ratio", lambda k, v: check_number(k, v, low=1.0))
    when("profile", lambda k, v: check_choice(k, v, PROFILES))
    when("step_fraction", lambda k, v: check_number(k, v, 0.0, 1.0, low_open=True, high_open=True))
    when("class_sep", lambda k, v: check_number(k, v, low=0.0, low_open=True))
    for key in ("val_fraction", "test_fraction"):
        when(key, lambda k, v: check_number(k, v, 0.0, 1.0, low_open=True, high_open=True))
    val, test = data.get("val_fraction"), data.get("test_fraction")
    if _is_number(val) and _is_number(test) and val + test >= 1.0:
        raise UserError(
            f"data.val_fraction + data.test_fraction = {val + test:g} is invalid; allowed: a sum < 1 "
            "(the rest is the training split)"
        )
    for key in ("batch_size", "eval_batch_size", "num_workers"):
        minimum = 0 if key == "num_workers" else 1
        when(key, lambda k, v, m=minimum: check_int(k, v, minimum=m))
    when("seed", lambda k, v: check_int(k, v, minimum=0, maximum=SEED_MAX))
    for key in ("path", "val_path", "test_path"):
        when(key, check_file)


def _check_loss(loss: DictConfig) -> None:
    if "reduction" in loss:
        check_choice("loss.reduction", loss.reduction, REDUCTIONS)
    if "normalize" in loss:
        check_choice("loss.normalize", loss.normalize, NORMALIZATIONS)
    # common hyper-parameters of imbalance losses, wherever a loss has them
    for key in ("gamma", "tau", "max_margin", "max_m"):
        if loss.get(key) is not None:
            check_number(f"loss.{key}", loss.get(key), low=0.0)
    for key in ("scale", "s"):
        if loss.get(key) is not None:
            check_number(f"loss.{key}", loss.get(key), low=0.0, low_open=True)


def _check_model(model: DictConfig) -> None:
    from imbalanced.models.mlp import ACTIVATIONS

    backbone = model.get("backbone")
    if isinstance(backbone, DictConfig):
        if "hidden_sizes" in backbone:
            sizes = _get(backbone, "hidden_sizes")
            if not isinstance(sizes, list) or not all(
                _is_number(s) and float(s) == int(s) and s >= 1 for s in sizes
            ):
                raise fail("model.backbone.hidden_sizes", sizes, "a list of integers >= 1, e.g. [256,256]")
        if backbone.get("dropout") is not None:
            check_number("model.backbone.dropout", backbone.dropout, 0.0, 1.0, high_open=True)
        if "activation" in backbone and backbone.get("_target_", "").endswith("MLP"):
            check_choice("model.backbone.activation", backbone.activation, ACTIVATIONS)
    optimizer = model.get("optimizer")
    if isinstance(optimizer, DictConfig):
        import torch

        accepted = accepted_parameters(torch.optim.AdamW) or set()
        accepted -= {"params"}
        for name in optimizer.keys():
            if name not in accepted:
                raise UserError(
                    f"model.optimizer.{name}={_show(optimizer.get(name))} is not a setting of AdamW; "
                    f"allowed keys: {', '.join(sorted(accepted))}"
                )
        if "lr" in optimizer:
            check_number("model.optimizer.lr", optimizer.lr, low=0.0, low_open=True)
        if "weight_decay" in optimizer:
            check_number("model.optimizer.weight_decay", optimizer.weight_decay, low=0.0)
        if "eps" in optimizer:
            check_number("model.optimizer.eps", optimizer.eps, low=0.0, low_open=True)
    if "scheduler" in model:
        check_choice("model.scheduler", model.scheduler if model.scheduler is not None else "none",
                     SCHEDULERS)


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


def _check_class_weights(cfg: DictConfig) -> None:
    weights: dict[str, Any] = OmegaConf.to_container(cfg.class_weights, resolve=True)
    unknown = set(weights) - {"strategy", "beta", "weights"}
    if unknown:
        key = sorted(unknown)[0]
        raise UserError(
            f"class_weights.{key}={_show(weights[key])} is not a class-weight setting; "
            "allowed keys: strategy, beta, weights"
        )
    validate_weight_settings(
        weights.get("strategy", "none"), beta=weights.get("beta"), weights=weights.get("weights")
    )


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
    if _cluster_launched() and mode != "MULTIRUN" and not any(
        o.startswith("hydra.run.dir=") for o in hydra_overrides
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


# ---- entry point -------------------------------------------------------------------------------
def check_config(cfg: DictConfig) -> None:
    """Raise UserError naming the first invalid setting, its value and what is valid."""
    _check_missing(cfg)
    if "seed" in cfg:  # eval.py / predict.py have no seed (their configs hold what they use)
        check_int("seed", cfg.get("seed"), minimum=0, maximum=SEED_MAX)
    for key, node in _target_nodes(cfg):
        _check_target_node(key, node)
    if isinstance(cfg.get("data"), DictConfig):
        _check_data(cfg.data)
    if cfg.get("class_weights") is not None:
        _check_class_weights(cfg)
    if isinstance(cfg.get("loss"), DictConfig):
        _check_loss(cfg.loss)
    if isinstance(cfg.get("model"), DictConfig):
        _check_model(cfg.model)
    if isinstance(cfg.get("trainer"), DictConfig):
        _check_trainer(cfg.trainer)
    if cfg.get("ckpt_path") is not None:
        check_file("ckpt_path", cfg.ckpt_path)
    if cfg.get("loss") is not None and cfg.get("class_weights") is not None:
        check_techniques(cfg)
    elif cfg.get("posthoc_tau") is not None:  # eval.py / predict.py: null keeps the checkpoint's
        posthoc_tau(cfg)
    _check_batch_norm_batch(cfg)
    _check_launch(cfg)
