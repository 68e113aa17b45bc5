"""What every command-line app (train.py, eval.py, predict.py) does with a task's errors."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from imbalanced.console import tidy_lightning_logging
from imbalanced.errors import TrainingInterrupted, UserError, unwrap_user_errors


def run_task(task: Callable[[DictConfig], Any], cfg: DictConfig) -> Any:
    """Run `task(cfg)`; a UserError becomes one `error: ...` line and exit code 2.

    In a multirun the error is re-raised instead, so Hydra marks the job failed and the sweep goes
    on (sys.exit would end the sweep). An interrupted training run exits 130 (SIGINT) / 143 (SIGTERM).
    """
    tidy_lightning_logging()  # one line per message, no advertising tips
    try:
        with unwrap_user_errors():  # also a setting a constructor refused inside Hydra's instantiate
            return task(cfg)
    except UserError as error:
        print(f"error: {one_line(error)}", file=sys.stderr)
        if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
            raise
        sys.exit(2)
    except TrainingInterrupted as stop:
        print(f"interrupted: {stop}", file=sys.stderr)
        sys.exit(stop.exit_code)



def one_line(error: UserError) -> str:
    """The error's own message. A UserError raised in a DataLoader worker (e.g. an input that fails
    to decode) is re-raised by PyTorch with the worker's traceback as its text, whose last line is
    `module.ErrorType: the original message`."""
    text = str(error)
    if "\nOriginal Traceback" not in text:
        return text
    last = [line for line in text.splitlines() if line.strip()][-1]
    name, separator, message = last.partition(": ")
    return message if separator and name.rsplit(".", 1)[-1] == type(error).__name__ else last
