"""What every command-line app (train.py, eval.py, predict.py) does with a task's errors."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from omegaconf import DictConfig

from imbalanced.console import tidy_lightning_logging
from imbalanced.errors import TrainingInterrupted, UserError


def run_task(task: Callable[[DictConfig], Any], cfg: DictConfig) -> Any:
    """Run `task(cfg)`; a UserError becomes one `error: ...` line and exit code 2.

    In a multirun the error is re-raised instead, so Hydra marks the job failed and the sweep goes
    on (sys.exit would end the sweep). An interrupted training run exits 130 (SIGINT) / 143 (SIGTERM).
    """
    tidy_lightning_logging()  # one line per message, no advertising tips
    try:
        return task(cfg)
    except UserError as error:
        _report_user_error(error)
    except InstantiationException as error:
        # a constructor refused a setting while Hydra built the object: report its one-line error
        if not isinstance(error.__cause__, UserError):
            raise
        _report_user_error(error.__cause__)
    except TrainingInterrupted as stop:
        print(f"interrupted: {stop}", file=sys.stderr)
        sys.exit(stop.exit_code)


def _report_user_error(error: UserError) -> None:
    print(f"error: {error}", file=sys.stderr)
    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        raise error
    sys.exit(2)
