"""Logging a per-step scalar without a device sync or a `self.log` call on every step.

`self.log(..., on_step=True, on_epoch=True)` on every training step costs Lightning's result
bookkeeping each step (about a sixth of a small MLP's step time on a CPU, see benchmarks/) and,
whenever the value is read, a device sync. `SparseLossLog` instead adds the detached loss to an
accumulator on the loss's device (an asynchronous in-place add) and calls `self.log` only on the
steps where Lightning writes to the logger (every `trainer.log_every_n_steps`), with the mean of the
steps since the last write, and once per epoch with the epoch mean (averaged over DDP ranks).
The logged names are Lightning's own for `on_step` + `on_epoch`: `<name>_step` and `<name>_epoch`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


class SparseLossLog:
    def __init__(self, name: str) -> None:
        self.name = name
        self._window: Tensor | None = None
        self._epoch: Tensor | None = None
        self._window_steps = 0
        self._epoch_steps = 0

    def step(self, module: Any, value: Tensor) -> None:
        """Accumulate `value`; log the window mean if this is one of the trainer's logging steps."""
        value = value.detach().float()
        if self._window is None or self._window.device != value.device:
            self._window = torch.zeros((), device=value.device)
            self._epoch = torch.zeros((), device=value.device)
            self._window_steps = self._epoch_steps = 0
        self._window += value
        self._epoch += value
        self._window_steps += 1
        self._epoch_steps += 1
        trainer = module._trainer
        every = max(int(getattr(trainer, "log_every_n_steps", 1) or 1), 1) if trainer is not None else 1
        # Lightning writes step metrics when (optimizer steps so far + 1) % log_every_n_steps == 0.
        if trainer is not None and (module.global_step + 1) % every == 0:
            module.log(
                f"{self.name}_step",
                self._window / self._window_steps,
                on_step=True,
                on_epoch=False,
                prog_bar=True,
            )
            self._window = torch.zeros_like(self._window)
            self._window_steps = 0

    def log_epoch(self, module: Any) -> None:
        """Log the epoch mean (one all-reduce across ranks) and start a new epoch."""
        if not self._epoch_steps or self._epoch is None:
            return
        module.log(
            f"{self.name}_epoch",
            self._epoch / self._epoch_steps,
            on_step=False,
            on_epoch=True,
            prog_bar=True,
            sync_dist=True,
        )
        self._epoch = torch.zeros_like(self._epoch)
        self._window = torch.zeros_like(self._epoch)
        self._epoch_steps = self._window_steps = 0
