"""A multirun whose jobs fail on their settings ends with one `error:` line, not a traceback.

Each job that raises `UserError` has already printed its own `error: ...` line (exit_codes.run_task).
Hydra's basic sweeper would then re-raise the first failure after the sweep, printing a traceback.
This Hydra callback (listed first in configs/hydra/default.yaml, so its end hooks run after the
sweep summary's) records those failures, marks the jobs done so the sweep finishes normally, and
at the end prints one line naming the failed jobs and exits with code 2. Other exceptions (bugs)
keep Hydra's report.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from imbalanced.errors import UserError


class SweepErrors(Callback):
    def __init__(self) -> None:
        self.failed: list[str] = []

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.failed = []

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if config.hydra.mode != RunMode.MULTIRUN or job_return.status != JobStatus.FAILED:
            return
        error = job_return._return_value  # `.return_value` would re-raise it
        if not isinstance(error, UserError):
            return
        overrides = " ".join(job_return.overrides or [])
        self.failed.append(f"job {config.hydra.job.num} ({overrides}): {error}")
        job_return.status = JobStatus.COMPLETED  # reported here, at the end, in one line
        job_return.return_value = None

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if not self.failed:
            return
        summary = Path(str(config.hydra.sweep.dir)) / "summary.md"
        print(
            f"error: {len(self.failed)} job(s) of the sweep failed on their settings: "
            f"{' | '.join(self.failed)} (see {summary})",
            file=sys.stderr,
            flush=True,
        )
        sys.exit(2)
