"""The run directory, guarded before Hydra writes into it (a Hydra callback, configs/hydra/default.yaml).

Hydra writes `.hydra/config.yaml` and the log file before the task starts, so the checks run in
`on_run_start`, before anything is written:

- the directory must be creatable (else one `error:` line, exit 2, not a traceback);
- `eval.py` / `predict.py` refuse a directory that holds another run's results (`metrics.json`,
  `checkpoints/`, `predictions.csv`, ...): they would overwrite them and its `.hydra/` config;
- a fresh `train.py` refuses a directory with checkpoints (resuming it with `ckpt_path=` is allowed);
- `train.py` refuses a directory that holds the outputs of `eval.py` or `predict.py` (its
  `.hydra/hydra.yaml` names the command, or it holds `predictions.csv`), as they refuse train's;
- a lock (`.lock`, `fcntl.flock`) is held for the whole run: a second command started on the same
  directory while the first runs is refused. The operating system releases the lock when the
  process ends, even on kill -9, so a crashed run never leaves the directory locked. (On Windows,
  without `fcntl`, there is no lock.) Under DDP only the launching process (rank 0) locks. The
  file is removed when the run ends (also on an error exit), so a finished run directory holds
  only the run's outputs; a process that takes the lock checks that the file it locked is still
  the one in the directory, since the previous holder may have removed it in between.

In a multirun each job's own directory is locked the same way (`on_job_start`).
"""

from __future__ import annotations

import atexit
import os
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".lock"
# results of a run; a directory with only `.hydra/` and a log (a run that failed on its settings)
# may be reused, so a corrected command can run where the failed one did
RUN_OUTPUTS = ("metrics.json", "checkpoints", "class_weights.json", "predictions.csv", "summary.csv")
OTHER_COMMANDS = ("eval", "predict")  # whose outputs train.py must not overwrite
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID")

_held: dict[Path, Any] = {}  # run directory -> open lock file of this process


class RunDirRefused(Exception):
    """The run directory cannot be used; the message says why and what is allowed."""


def is_launching_process() -> bool:
    """False in the extra processes of a distributed launch (they share rank 0's directory)."""
    return all(os.environ.get(name, "0") in ("", "0") for name in RANK_VARIABLES)


def foreign_outputs(directory: Path) -> list[str]:
    """Names of another run's outputs in `directory`."""
    return [name for name in RUN_OUTPUTS if (directory / name).exists()]


def previous_command(directory: Path) -> str | None:
    """The command (Hydra's job name: train, eval, predict) that last ran in `directory`, if known."""
    try:
        import yaml

        content = yaml.safe_load((directory / ".hydra" / "hydra.yaml").read_text(encoding="utf-8"))
        name = content["hydra"]["job"]["name"]
    except Exception:  # noqa: BLE001 - no such file, or not Hydra's: unknown
        return None
    return name if isinstance(name, str) else None


def check_run_dir_use(directory: Path, task: str, resuming: bool) -> None:
    """RunDirRefused if `task` must not write into `directory` (see the module docstring)."""
    if task == "train":
        found = foreign_outputs(directory)
        command = previous_command(directory)
        if found and (command in OTHER_COMMANDS or "predictions.csv" in found):
            raise RunDirRefused(
                f"hydra.run.dir={directory} holds the outputs {found} of a {command or 'predict'}.py run; "
                "train.py would overwrite them. allowed: a new directory (the default "
                "outputs/<date>/<time>, or hydra.run.dir=DIR)"
            )
        checkpoints = directory / "checkpoints"
        existing = sorted(p.name for p in checkpoints.glob("*.ckpt")) if checkpoints.is_dir() else []
        if existing and not resuming:
            raise RunDirRefused(
                f"hydra.run.dir={directory} already holds checkpoints {existing}; allowed: a new run "
                f"directory, or resume that run with ckpt_path={checkpoints / 'last.ckpt'}"
            )
        return
    found = foreign_outputs(directory)
    if found:
        raise RunDirRefused(
            f"hydra.run.dir={directory} holds another run's outputs {found}; {task}.py would overwrite "
            "them. allowed: a new directory (the default outputs/<date>/<time>, or hydra.run.dir=DIR)"
        )


def acquire_lock(directory: Path) -> None:
    """Create `directory` and hold its lock; RunDirRefused if it cannot be created or is locked."""
    while True:  # again only when the file was removed by its previous holder between open and lock
        try:
            directory.mkdir(parents=True, exist_ok=True)
            handle = open(directory / LOCK_FILE, "a+")  # noqa: SIM115 - held open for the whole run
        except OSError as error:
            raise RunDirRefused(
                f"hydra.run.dir={directory} cannot be created or written ({error.strerror or error}); "
                "allowed: a writable directory"
            ) from None
        if fcntl is None:
            _held[directory] = handle
            return
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            handle.close()
            raise RunDirRefused(
                f"hydra.run.dir={directory} is in use by another running command (process {owner}); "
                "allowed: a different hydra.run.dir, or wait until that run ends"
            ) from None
        if _is_current(handle, directory / LOCK_FILE):
            break
        handle.close()
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    _held[directory] = handle


def _is_current(handle: Any, path: Path) -> bool:
    """Whether the open `handle` is still the file at `path` (not one removed since it was opened)."""
    try:
        return os.path.samestat(os.fstat(handle.fileno()), os.stat(path))
    except OSError:
        return False


def release_locks() -> None:
    """Release every run-directory lock this process holds and remove its lock file."""
    while _held:
        directory, handle = _held.popitem()
        try:
            if _is_current(handle, directory / LOCK_FILE):  # removed while still locked: see above
                os.unlink(directory / LOCK_FILE)
        except OSError:
            pass  # a read-only or vanished directory: the lock still ends with the process
        finally:
            try:
                if fcntl is not None:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            finally:
                handle.close()


atexit.register(release_locks)  # an error exit (sys.exit inside the task) skips Hydra's on_run_end


def _refuse(error: RunDirRefused) -> None:
    print(f"error: {error}", file=sys.stderr, flush=True)
    sys.exit(2)


class RunDirGuard(Callback):
    """Hydra callback: check and lock the run directory before Hydra writes into it."""

    def on_run_start(self, config: DictConfig, config_name: str | None = None, **kwargs: Any) -> None:
        release_locks()  # a previous in-process run that ended by sys.exit kept its lock
        if not is_launching_process():
            return
        directory = Path(str(config.hydra.run.dir)).expanduser()
        try:
            check_run_dir_use(directory, str(config_name or ""), resuming=config.get("ckpt_path") is not None)
            acquire_lock(directory)
        except RunDirRefused as error:
            _refuse(error)

    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        release_locks()

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        from hydra.types import RunMode

        if config.hydra.mode != RunMode.MULTIRUN or not is_launching_process():
            return
        try:
            acquire_lock(Path(str(config.hydra.runtime.output_dir)))
        except RunDirRefused as error:
            _refuse(error)

    def on_job_end(self, config: DictConfig, **kwargs: Any) -> None:
        from hydra.types import RunMode

        if config.hydra.mode == RunMode.MULTIRUN:
            release_locks()
