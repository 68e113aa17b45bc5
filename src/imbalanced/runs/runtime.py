"""Run-time speed settings: float32 matmul precision and `torch.compile` of the backbone.

`torch.compile(module)` returns a wrapper whose `state_dict` keys carry an `_orig_mod.` prefix, so a
checkpoint saved from a compiled model would not load into a plain one (and vice versa). The
template avoids that by compiling in place with `nn.Module.compile()` (the parameters stay where they
are, so keys are identical with and without compile), and `strip_compile_prefix` repairs
checkpoints written by code that wrapped the model with `torch.compile(...)` itself.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

from imbalanced.errors import UserError

MATMUL_PRECISIONS = ("highest", "high", "medium")
COMPILE_PREFIX = "_orig_mod."


def check_matmul_precision(value: Any) -> None:
    if value is not None and value not in MATMUL_PRECISIONS:
        raise UserError(
            f"matmul_precision={value!r} is unknown; valid: {', '.join(MATMUL_PRECISIONS)} or null "
            "(leave PyTorch's setting alone)"
        )


def apply_runtime_settings(cfg: Mapping[str, Any]) -> None:
    """Check `matmul_precision` and `model.compile`, then set
    `torch.set_float32_matmul_precision(cfg.matmul_precision)` (null: leave it alone).

    `high` lets float32 matmuls use TensorFloat-32 on Ampere+ GPUs (what Lightning suggests);
    it changes nothing on CPUs without reduced-precision matmul units.
    """
    value = cfg.get("matmul_precision")
    check_matmul_precision(value)
    model = cfg.get("model") or {}
    compile_options(model.get("compile"))  # a bad model.compile fails here, before any data is loaded
    if value is not None:
        import torch

        torch.set_float32_matmul_precision(value)


def compile_options(setting: Any) -> dict[str, Any] | None:
    """`model.compile`: false/null (off), true (defaults) or a mapping of `torch.compile` kwargs."""
    if setting is None or setting is False:
        return None
    if setting is True:
        return {}
    if isinstance(setting, Mapping):
        return dict(setting)
    raise UserError(
        f"model.compile={setting!r} must be true, false, or a mapping of torch.compile arguments "
        "such as {mode: max-autotune} or {backend: eager}"
    )


def compile_in_place(module: Any, setting: Any) -> bool:
    """Compile `module`'s forward in place (state_dict keys unchanged); returns whether it did."""
    options = compile_options(setting)
    if options is None:
        return False
    module.compile(**options)
    return True


def strip_compile_prefix(state_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Remove `_orig_mod.` (added by `torch.compile` wrappers) from every key, in place."""
    for key in [k for k in state_dict if COMPILE_PREFIX in k]:
        state_dict[key.replace(COMPILE_PREFIX, "")] = state_dict.pop(key)
    return state_dict
