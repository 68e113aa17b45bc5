"""Value checks that constructors call on their own settings: one line `key=value is invalid; allowed: ...`.

Each rule lives next to what it checks (a datamodule checks its sizes and files, a backbone its
widths); `runs/config_checks.py` builds those cheap objects before any data is loaded, so a bad
value still stops the run before data loads, with this one-line error and exit code 2.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from imbalanced.errors import UserError

SEED_MAX = 2**32 - 1  # numpy's seed range; Lightning silently picks a random seed outside it


def show(value: Any) -> str:
    if isinstance(value, (DictConfig, ListConfig)):
        value = OmegaConf.to_container(value, resolve=False)
    return repr(value) if isinstance(value, str) else str(value)


def fail(key: str, value: Any, allowed: str) -> UserError:
    """The one-line error: `key=value is invalid; allowed: ...`."""
    return UserError(f"{key}={show(value)} is invalid; allowed: {allowed}")


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_int(
    key: str, value: Any, minimum: int | None = None, maximum: int | None = None, extra: Iterable[Any] = ()
) -> int:
    """An integer (integral floats such as 1e3 are accepted) within [minimum, maximum]."""
    extra = tuple(extra)
    if value in extra and not isinstance(value, bool):
        return value
    allowed = "an integer" + (f" >= {minimum}" if minimum is not None else "")
    allowed += f" and <= {maximum}" if maximum is not None else ""
    allowed += f" (or {', '.join(map(str, extra))})" if extra else ""
    if not is_number(value) or not math.isfinite(value) or float(value) != int(value):
        raise fail(key, value, allowed)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise fail(key, value, allowed)
    return int(value)


def check_number(
    key: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """A finite number in the interval given (open or closed at each end)."""
    left = "(" if low_open else "["
    right = ")" if high_open or high is None else "]"
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    allowed = f"a finite number in {left}{lo}, {hi}{right}"
    if not is_number(value) or not math.isfinite(value):
        raise fail(key, value, allowed)
    if low is not None and (value < low or (low_open and value == low)):
        raise fail(key, value, allowed)
    if high is not None and (value > high or (high_open and value == high)):
        raise fail(key, value, allowed)
    return float(value)


def check_choice(key: str, value: Any, choices: Iterable[Any]) -> Any:
    choices = tuple(choices)
    if value not in choices or isinstance(value, bool):
        raise fail(key, value, "one of " + ", ".join(show(c) for c in choices))
    return value


def check_file(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise fail(key, value, "a path to an existing file")
    path = Path(value).expanduser()
    if not path.is_file():
        raise UserError(
            f"{key}={show(value)} is invalid; allowed: a path to an existing file "
            f"(no file at {path.resolve()})"
        )
    return value
