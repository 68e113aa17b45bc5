"""`_target_` dotted paths: importing one, and the parameters its constructor takes."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from imbalanced.value_checks import fail


def import_dotted(path: str) -> Any:
    """The object `package.module.name` names; ImportError, AttributeError or ValueError if none."""
    module_name, _, attribute = str(path).rpartition(".")
    if not module_name or not attribute:
        raise ValueError(f"{path!r} is not a dotted path")
    return getattr(importlib.import_module(module_name), attribute)


def import_target(key: str, target: Any) -> Any:
    """`import_dotted` for a config's `_target_`, failing with one line naming `key`."""
    if not isinstance(target, str) or "." not in target:
        raise fail(f"{key}._target_", target, "a dotted import path such as package.module.Class")
    try:
        return import_dotted(target)
    except (ImportError, AttributeError, ValueError) as error:
        raise fail(f"{key}._target_", target, f"an importable class or function ({error})") from None


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


def required_parameters(target: Any) -> set[str] | None:
    """Parameters of `target(...)` without a default; None when its signature cannot be read."""
    try:
        parameters = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return None
    return {
        p.name
        for p in parameters
        if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
