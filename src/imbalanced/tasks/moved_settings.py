"""Command-line keys that moved to their own config group: one clear error line, exit 2.

Hydra itself would refuse `model.optimizer.lr=0.01` with "Key 'optimizer' is not in struct"; this
says where the setting lives now. Light on purpose: it runs before Hydra composes the config.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

# old key -> config group: the optimizer and scheduler are config groups beside `loss`, so that
# `optimizer=sgd` / `scheduler=multistep` swap them and a fork adds one with a YAML file
MOVED = {"model.optimizer": "optimizer", "model.scheduler": "scheduler"}


def moved_override(argument: str) -> str | None:
    """The error for a command-line override that uses a moved key, else None."""
    override = argument.lstrip("+~")
    key = override.split("=", 1)[0]
    for old, group in MOVED.items():
        if key == old or key.startswith(old + "."):
            new = group + override[len(old) :]
            return (
                f"{key} moved to the `{group}` config group; use {new} instead of {argument} "
                f"({group}=OPTION picks one of configs/{group}/, e.g. optimizer=sgd scheduler=cosine)"
            )
    return None


def reject_moved_overrides(arguments: Sequence[str]) -> None:
    for argument in arguments:
        message = moved_override(argument)
        if message:
            print(f"error: {message}", file=sys.stderr)
            sys.exit(2)
