"""The optimizer and learning-rate schedule, built from the `optimizer` and `scheduler` config groups.

Both are Hydra configs with `_target_` and `_partial_: true` (configs/optimizer/, configs/scheduler/):
the template calls the partial with the module's parameters (optimizer) or the optimizer
(scheduler), so any `torch.optim` optimizer or scheduler is one YAML file. The configs travel in
the checkpoint's hyperparameters as plain dicts; Lightning restores the optimizer and scheduler
state on resume.

A `scheduler` config may hold keys the template reads itself (`SCHEDULE_KEYS`):

- `warmup_epochs` (default 0): linear warm-up. The learning rate the schedule gives is multiplied
  by (t + 1) / W over the first W epochs (t counts epochs, or optimizer steps with
  `interval: step`, W then being warmup_epochs x steps per epoch). The schedule itself runs from
  epoch 0 as without warm-up, so `MultiStepLR` milestones stay absolute epochs (LDAM-DRW: 5 warm-up
  epochs, x0.01 at 160 and 180, as Cao et al.'s code does).
- `interval` (default `epoch`): step the schedule every `epoch` or every optimizer `step`.
- `monitor`: the metric a `ReduceLROnPlateau`-like schedule watches.

A run-length argument left `null` (`T_max`, `total_steps`, `total_iters`) is filled with the run's
length in `interval` units: `trainer.max_epochs`, or the optimizer steps of the whole run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from hydra.utils import instantiate
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from imbalanced.errors import UserError
from imbalanced.value_checks import check_choice, check_int, check_number

# `fused`: one kernel per parameter group instead of a Python loop over the parameters (the default
# workload trains a third more samples/s on a CPU, docs/speed.md); a resumed checkpoint keeps the
# setting it was saved with (torch restores param-group options from the optimizer state).
DEFAULT_OPTIMIZER = {
    "_target_": "torch.optim.AdamW",
    "_partial_": True,
    "lr": 1e-3,
    "weight_decay": 1e-4,
    "fused": True,
}
SCHEDULE_KEYS = ("warmup_epochs", "interval", "monitor")
# a config group's keys that no `_target_` takes: the config check accepts them beside its parameters
KEYS_READ_BY_THE_TEMPLATE = {"scheduler": SCHEDULE_KEYS}
RUN_LENGTH_KEYS = ("T_max", "total_steps", "total_iters")
INTERVALS = ("epoch", "step")


def _target_name(config: Mapping[str, Any]) -> str:
    return str(config.get("_target_", "")).rsplit(".", 1)[-1]


def _settings(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if not (k.startswith("_") and k.endswith("_"))}


def optimizer_config(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """The config to build: `config` as given, or AdamW defaults updated by keys without a `_target_`."""
    config = dict(config or {})
    return config if "_target_" in config else {**DEFAULT_OPTIMIZER, **config}


def build_optimizer(config: Mapping[str, Any] | None, parameters: Iterable[Any]) -> Optimizer:
    """`instantiate(config)(parameters)`; bad settings raise a one-line UserError naming them."""
    config = optimizer_config(config)
    if config.get("lr") is not None:  # torch accepts lr=0, which trains nothing
        check_number("optimizer.lr", config["lr"], low=0.0, low_open=True)
    factory = instantiate(config, _partial_=True)
    try:
        return factory(parameters)
    except RuntimeError as error:
        if not config.get("fused") or "fused" not in str(error):
            raise
        raise UserError(
            f"optimizer.fused=true is not supported for these parameters ({error}); set optimizer.fused=false"
        ) from error
    except (ValueError, TypeError) as error:  # torch's own checks: "Invalid weight_decay value: -1.0"
        raise UserError(
            f"optimizer={_target_name(config)} rejects its settings {_settings(config)}: {error}"
        ) from None


@dataclass
class RunLength:
    """How long the run is: epochs (None: unbounded), optimizer steps per epoch and in all."""

    epochs: int | None
    steps_per_epoch: int
    total_steps: int | None

    @classmethod
    def of(cls, trainer: Any) -> RunLength:
        total = trainer.estimated_stepping_batches  # sets up the training loader if needed
        per_epoch = math.ceil(trainer.num_training_batches / max(trainer.accumulate_grad_batches, 1))
        epochs = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else None
        return cls(epochs, max(int(per_epoch), 1), int(total) if math.isfinite(total) else None)


def build_scheduler(
    config: Mapping[str, Any] | None,
    optimizer: Optimizer,
    run_length: Callable[[], RunLength],
) -> dict[str, Any] | None:
    """Lightning's `lr_scheduler` dict for `config`, or None (constant learning rate).

    `run_length` is called only when the schedule needs it (a null run-length argument, warm-up).
    """
    settings = dict(config or {})
    warmup = check_int("scheduler.warmup_epochs", settings.pop("warmup_epochs", 0) or 0, minimum=0)
    interval = check_choice("scheduler.interval", settings.pop("interval", "epoch"), INTERVALS)
    monitor = settings.pop("monitor", None)
    if "_target_" not in settings:
        for key, value in settings.items():  # a constant lr: nothing else to set
            raise UserError(
                f"scheduler.{key}={value!r} is not a setting of scheduler=none (a constant learning "
                f"rate); allowed keys: {', '.join(SCHEDULE_KEYS)}, or a _target_ (e.g. scheduler=cosine)"
            )
        if not warmup:
            return None
    length = run_length() if warmup or any(settings.get(k, 0) is None for k in RUN_LENGTH_KEYS) else None
    scheduler = None
    if "_target_" in settings:
        for key in RUN_LENGTH_KEYS:
            if key in settings and settings[key] is None:
                settings[key] = _length_in(length, interval, key)
        try:
            scheduler = instantiate(settings, _partial_=True)(optimizer)
        except (ValueError, TypeError, KeyError) as error:
            raise UserError(
                f"scheduler={_target_name(settings)} rejects its settings {_settings(settings)}: {error}"
            ) from None
    if warmup:
        steps = warmup * (length.steps_per_epoch if interval == "step" else 1)
        scheduler = LinearWarmup(optimizer, steps, scheduler)
    schedule = {"scheduler": scheduler, "interval": interval}
    if monitor is not None:
        schedule["monitor"] = monitor
    return schedule


def _length_in(length: RunLength, interval: str, key: str) -> int:
    value = length.epochs if interval == "epoch" else length.total_steps
    if value is None:
        raise UserError(
            f"scheduler.{key}=null means the run's length, but the run is unbounded "
            "(trainer.max_epochs=-1 without trainer.max_steps); allowed: a finite trainer.max_epochs, "
            f"or scheduler.{key}=<{interval}s>"
        )
    return max(int(value), 1)


class LinearWarmup(LRScheduler):
    """Multiply the learning rates `scheduler` gives by (t + 1) / warmup_steps while t < warmup_steps.

    Works with any wrapped schedule, recursive (MultiStepLR, CosineAnnealingLR) or closed-form
    (OneCycleLR): before each of its steps the wrapped schedule gets back its own un-warmed
    learning rates, so the warm-up factor never compounds. `scheduler=None`: warm up to a constant.
    """

    def __init__(self, optimizer: Optimizer, warmup_steps: int, scheduler: LRScheduler | None = None) -> None:
        self.warmup_steps = max(int(warmup_steps), 1)
        self.scheduler = scheduler
        self.scheduled = [group["lr"] for group in optimizer.param_groups]  # the wrapped schedule's
        super().__init__(optimizer)

    def factor(self, step: int) -> float:
        return min(1.0, (step + 1) / self.warmup_steps)

    def step(self, epoch: int | None = None) -> None:  # noqa: ARG002 - LRScheduler's signature
        self.last_epoch += 1
        groups = self.optimizer.param_groups
        if self.last_epoch > 0 and self.scheduler is not None:
            for group, lr in zip(groups, self.scheduled, strict=True):
                group["lr"] = lr
            self.scheduler.step()
            self.scheduled = [group["lr"] for group in groups]
        factor = self.factor(self.last_epoch)
        for group, lr in zip(groups, self.scheduled, strict=True):
            group["lr"] = lr * factor
        self._last_lr = [group["lr"] for group in groups]

    def state_dict(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "scheduler")}
        state["scheduler"] = None if self.scheduler is None else self.scheduler.state_dict()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = dict(state_dict)
        wrapped = state.pop("scheduler", None)
        self.__dict__.update(state)
        if self.scheduler is not None and wrapped is not None:
            self.scheduler.load_state_dict(wrapped)


def check_optimization(
    optimizer: Mapping[str, Any] | None, scheduler: Mapping[str, Any] | None, max_epochs: Any
) -> None:
    """Build both on one CPU parameter: their settings fail here, before any data is loaded."""
    parameter = torch.nn.Parameter(torch.zeros(1))
    built = build_optimizer(optimizer, [parameter])
    epochs = max_epochs if isinstance(max_epochs, int) and max_epochs > 0 else None
    build_scheduler(scheduler, built, lambda: RunLength(epochs, 1, epochs))
