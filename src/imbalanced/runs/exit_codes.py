"""What every command-line app (train.py, eval.py, predict.py) does with a task's errors."""

from __future__ import annotations

import difflib
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import hydra._internal.utils as hydra_internal
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import (
    ConfigCompositionException,
    HydraException,
    MissingConfigException,
    OverrideParseException,
)
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from imbalanced.errors import TrainingInterrupted, UserError, unwrap_user_errors
from imbalanced.runs.console import tidy_lightning_logging


def run_task(task: Callable[[DictConfig], Any], cfg: DictConfig) -> Any:
    """Run `task(cfg)`; a UserError becomes one `error: ...` line and exit code 2.

    In a multirun the error is re-raised instead, so Hydra marks the job failed and the sweep goes
    on (sys.exit would end the sweep). An interrupted run exits 130 (SIGINT) / 143 (SIGTERM).
    """
    from imbalanced.runs.safeguards import stop_on_signals  # torch: not for --help

    tidy_lightning_logging()  # one line per message, no advertising tips
    try:
        # SIGINT/SIGTERM stop every stage at once (training finishes its batch: GracefulInterrupt);
        # also a setting a constructor refused inside Hydra's instantiate comes out as itself
        with stop_on_signals(), unwrap_user_errors():
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


# ---- Hydra's own errors (composing the config, before any task runs) --------------------------
def run_app(main: Callable[[], Any]) -> None:
    """Call a `@hydra.main` function; Hydra's composition errors (an unknown option of a config
    group, a key that does not exist, an override that does not parse) become one `error: ...` line
    and exit code 2, like every other setting error. HYDRA_FULL_ERROR=1 keeps Hydra's report."""
    with _one_line_composition_errors(sys.argv[1:]):
        main()


@contextmanager
def _one_line_composition_errors(arguments: list[str]) -> Iterator[None]:
    # Hydra catches every exception in `run_and_report` and prints a multi-line report with exit
    # code 1; its entry points call that function by name, so it is wrapped for this call only.
    original = hydra_internal.run_and_report

    def report(func: Callable[[], Any]) -> Any:
        def one_line_errors() -> Any:
            try:
                return func()
            except (ConfigCompositionException, OverrideParseException) as error:
                if os.environ.get("HYDRA_FULL_ERROR") == "1":
                    raise
                print(f"error: {composition_message(error, arguments)}", file=sys.stderr, flush=True)
                sys.exit(2)

        return original(one_line_errors)

    hydra_internal.run_and_report = report
    try:
        yield
    finally:
        hydra_internal.run_and_report = original


def composition_message(error: Exception, arguments: list[str]) -> str:
    """One line naming the override Hydra refused and what is valid."""
    if isinstance(error, MissingConfigException) and error.options is not None and error.missing_cfg_file:
        return _unknown_option(error.missing_cfg_file, list(error.options), arguments)
    if isinstance(error, OverrideParseException):
        return _unparsable_override(error, arguments)
    cause = error.__cause__
    key = getattr(cause, "full_key", None)
    if isinstance(error, ConfigCompositionException) and key and cause is not None:
        return _unknown_key(str(key), getattr(cause, "parent_node", None), arguments)
    text = _flatten(str(error))
    named = re.search(r"'([^']+)'", text)  # Hydra quotes the key or group it could not use
    if named and "No match in the defaults list" in text:
        return _not_a_group(named.group(1), arguments)
    given = _argument_for(named.group(1), arguments) if named else None
    return f"{given}: {text}" if given else text


def _not_a_group(key: str, arguments: list[str]) -> str:
    """`data=nosuch` where `data` is a plain setting of the command (eval.py's data overrides)."""
    given = _argument_for(key, arguments) or key
    script = Path(sys.argv[0])
    primary = script.resolve().parent / "configs" / f"{script.stem}.yaml"
    node = OmegaConf.load(primary).get(key) if primary.is_file() else None
    keys = sorted(str(k) for k in node.keys()) if isinstance(node, DictConfig) else []
    listed = (
        f" ({', '.join(f'{key}.{k}' for k in keys)}, or +{key}.KEY for another saved key)" if keys else ""
    )
    return (
        f"{given} is not valid here: `{key}` of {script.name} is a group of settings, not a config "
        f"group with options; allowed: {key}.KEY=VALUE{listed}"
    )


def _unknown_option(missing: str, options: list[str], arguments: list[str]) -> str:
    group, _, name = missing.rpartition("/")
    given = _argument_for(group, arguments) or f"{group}={name}"
    closest = difflib.get_close_matches(name, options, n=1)
    hint = f" (closest: {group}={closest[0]})" if closest else ""
    return f"{given} is not an option of the config group `{group}`; allowed: {', '.join(options)}{hint}"


def _unknown_key(key: str, parent: Any, arguments: list[str]) -> str:
    given = _argument_for(key, arguments) or key
    name = key.rpartition(".")[2]
    keys = sorted(str(k) for k in parent.keys()) if hasattr(parent, "keys") else []
    closest = difflib.get_close_matches(name, keys, n=1)
    prefix = key.rpartition(".")[0]
    where = f"the keys of {prefix}" if prefix else "the top-level keys"
    hint = f" (closest: {prefix + '.' if prefix else ''}{closest[0]})" if closest else ""
    # a parameter a target takes but its YAML does not list is added with `+` (and checked then)
    add = f", or +{given.lstrip('+~')} for a parameter not listed there" if prefix else ""
    return f"{given} is not a setting: no key {key} exists; allowed: {where}: {', '.join(keys)}{hint}{add}"


def _unparsable_override(error: Exception, arguments: list[str]) -> str:
    parser = OverridesParser.create()
    bad = None
    for argument in arguments:
        if argument.startswith("-"):  # --multirun, --cfg job, ...: Hydra's own flags
            continue
        try:
            parser.parse_override(argument)
        except HydraException:
            bad = argument
            break
    reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    what = f"the override {bad!r}" if bad else "an override"
    return (
        f"{what} cannot be parsed ({reason}); allowed: key=value, +key=value, ~key, "
        "group=option; quote values holding [ ] { } ( ) , = or spaces "
        "(https://hydra.cc/docs/advanced/override_grammar/basic/)"
    )


def _argument_for(key: str, arguments: list[str]) -> str | None:
    """The command-line override that sets `key` (`key=...`, `+key=...`, `~key`), as typed."""
    for argument in arguments:
        if argument.lstrip("+~").split("=", 1)[0].split("@", 1)[0] == key:
            return argument
    return None


def _flatten(text: str) -> str:
    """Hydra's message without its search-path listing and blank lines, on one line."""
    text = text.split("Config search path:", 1)[0]
    return " ".join(line.strip() for line in text.splitlines() if line.strip())
