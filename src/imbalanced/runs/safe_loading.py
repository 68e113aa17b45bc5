"""Loading checkpoints from outside without running code from them.

A checkpoint is untrusted input. Two ways it could run code, both closed here:

- Pickle: `torch.load(weights_only=False)` executes whatever a crafted pickle asks for. Every
  checkpoint (eval, predict and resume alike) is read with `weights_only=True`, which admits only
  tensors and plain containers (dict, list, str, numbers); anything else is refused unread.
- Configs: eval.py and predict.py rebuild the backbone, the loss and the datamodule by
  `instantiate`-ing the configs saved in the checkpoint's hyperparameters. Every `_target_` found
  anywhere in them is checked against an allow-list before anything is instantiated:
  * classes defined in this package (`imbalanced.*`; functions and re-exported foreign objects such
    as `imbalanced.x.os.system` are refused),
  * the exact `_target_`s named in the project's config groups (configs/**/*.yaml),
  * what the user trusts explicitly: a fork's packages, listed once (`trusted_packages: [my_pkg]`
    in configs/trusted/packages.yaml), or `trusted_targets=[my_pkg.MyBackbone, my_pkg.]` on one
    command (an entry ending in `.` trusts a whole package). Never read from the checkpoint.
  Before that, any string holding `${` is refused: an OmegaConf interpolation (`${oc.decode:...}`,
  `${oc.env:...}`) would be resolved by instantiation into values, `_target_`s included, that the
  allow-list never saw. The template's own checkpoints hold resolved configs, so none has one.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from imbalanced.errors import UserError
from imbalanced.targets import import_dotted

OWN_PACKAGE = "imbalanced"
_TARGET_LINE = re.compile(r"^\s*_target_:\s*['\"]?([A-Za-z_][\w.]*)['\"]?\s*(#.*)?$", re.MULTILINE)
_REPO_CONFIGS = Path(__file__).resolve().parents[3] / "configs"


def read_checkpoint(path: str | Path, setting: str = "ckpt_path") -> dict[str, Any]:
    """The checkpoint's content, read with `weights_only=True`; UserError for anything else."""
    file = Path(str(path)).expanduser()
    if file.is_dir():
        raise UserError(
            f"{setting}={path} is a folder, not a checkpoint file; give a file such as "
            f"{file / 'checkpoints' / 'last.ckpt'}"
        )
    if not file.is_file():
        raise UserError(f"{setting}={path}: file not found")
    try:
        checkpoint = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - truncated, not a torch file, or unsafe content
        text = str(error)
        # torch names a refused global on one line: "Unsupported global: GLOBAL x" (not allowed) or
        # "Trying to load unsupported GLOBAL x whose module y is blocked"
        unsafe = next(
            (
                line.strip()
                for line in text.splitlines()
                if "GLOBAL" in line and "unsupported" in line.lower()
            ),
            None,
        )
        if unsafe is not None:
            raise UserError(
                f"{setting}={path} is refused: it holds Python objects, not only tensors and plain data "
                f"({unsafe}); loading it could run code from the file. Only checkpoints readable with "
                "torch.load(weights_only=True) are loaded"
            ) from None
        raise UserError(
            f"{setting}={path} is not a readable checkpoint: not a PyTorch file, or cut off "
            f"({_reason(text) or type(error).__name__})"
        ) from None
    if not isinstance(checkpoint, dict):
        raise UserError(f"{setting}={path} is not a checkpoint (it holds a {type(checkpoint).__name__})")
    return checkpoint


_BOILERPLATE = ("weights only load failed", "please file an issue", "check the documentation")


def _reason(text: str) -> str:
    """The informative line of torch.load's error (its weights-only message is mostly advice)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    useful = [line for line in lines if not line.lower().startswith(_BOILERPLATE)]
    return (useful or lines or [""])[0][:200]


def named_targets(value: Any, where: str = "") -> list[tuple[str, Any]]:
    """Every (key path, `_target_` value) in a nested structure of dicts and lists."""
    found: list[tuple[str, Any]] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            path = f"{where}.{key}" if where else str(key)
            if key == "_target_":
                found.append((path, item))
            else:
                found.extend(named_targets(item, path))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found.extend(named_targets(item, f"{where}[{index}]"))
    return found


def config_dirs() -> list[Path]:
    """The file-system config directories Hydra searches (the repo's configs/ and any added)."""
    dirs = [_REPO_CONFIGS] if _REPO_CONFIGS.is_dir() else []
    try:
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.initialized():
            for source in HydraConfig.get().runtime.config_sources:
                if source.schema == "file" and Path(source.path).is_dir():
                    dirs.append(Path(source.path))
    except Exception:  # noqa: BLE001 - outside a Hydra app the repo's configs are the list
        pass
    return list(dict.fromkeys(path.resolve() for path in dirs))


@lru_cache(maxsize=8)
def _targets_in(directory: Path) -> frozenset[str]:
    return frozenset(
        match.group(1)
        for file in sorted(directory.rglob("*.yaml"))
        for match in _TARGET_LINE.finditer(file.read_text(encoding="utf-8", errors="replace"))
    )


def config_group_targets(dirs: Iterable[Path] | None = None) -> set[str]:
    """The `_target_`s the config groups name (exact dotted paths)."""
    return set().union(*(_targets_in(d) for d in (config_dirs() if dirs is None else dirs)))


def _own_class(target: str) -> bool:
    """`target` names a class defined in this package (imported only after the name is checked)."""
    try:
        obj = import_dotted(target)
    except (ImportError, AttributeError, ValueError):
        return False
    module = getattr(obj, "__module__", "") or ""
    return inspect.isclass(obj) and (module == OWN_PACKAGE or module.startswith(OWN_PACKAGE + "."))


def is_allowed_target(
    target: Any, trusted: Sequence[str] = (), group_targets: set[str] | None = None
) -> bool:
    if not isinstance(target, str) or not target:
        return False
    if target in trusted or any(t.endswith(".") and target.startswith(t) for t in trusted):
        return True
    if target in (config_group_targets() if group_targets is None else group_targets):
        return True
    return target.startswith(OWN_PACKAGE + ".") and _own_class(target)


def interpolations(value: Any, where: str = "") -> list[str]:
    """Key paths of every string (value or key) in a nested structure that holds `${`."""
    found: list[str] = []
    if isinstance(value, str):
        return [where] if "${" in value else []
    if isinstance(value, Mapping):
        for key, item in value.items():
            path = f"{where}.{key}" if where else str(key)
            if isinstance(key, str) and "${" in key:
                found.append(where or str(key))
            found.extend(interpolations(item, path))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found.extend(interpolations(item, f"{where}[{index}]"))
    return found


def check_targets(
    hyperparameters: Mapping[str, Any],
    trusted: Sequence[str] | None = (),
    setting: str = "ckpt_path",
    path: str | Path = "",
) -> None:
    """UserError naming the first interpolation in a checkpoint's hyperparameters, else the first
    `_target_` that the allow-list does not admit."""
    hidden = interpolations(hyperparameters)
    if hidden:
        raise UserError(
            f"{setting}={path} is refused: its hyperparameter {hidden[0]} holds an interpolation "
            "(`${...}`), which would be resolved into settings and code the allow-list never checked; "
            "this template's checkpoints hold resolved values only. allowed: a checkpoint written by "
            "train.py"
        )
    trusted = [str(t) for t in (trusted or [])]
    groups = config_group_targets()
    for where, target in named_targets(hyperparameters):
        if not is_allowed_target(target, trusted, groups):
            raise UserError(
                f"{setting}={path} is refused: its hyperparameter {where}={target!r} names code this "
                "template does not trust (allowed: classes of the imbalanced package and the "
                "_target_s of the config groups). If you wrote that checkpoint and trust the code, "
                f"allow it explicitly: trusted_targets=[{target}], or list its package once in "
                f"configs/trusted/packages.yaml (trusted_packages: [{str(target).split('.')[0]}])"
            )


def trusted_targets(cfg: Mapping[str, Any]) -> list[str]:
    """`trusted_targets` (exact paths, or prefixes ending in ".") and `trusted_packages` (package
    names, trusted as prefixes) from the config, each a list or one string."""

    def listed(key: str) -> list[str]:
        value = cfg.get(key) if cfg is not None else None
        if value is None:
            return []
        return [str(value)] if isinstance(value, str) else [str(v) for v in value]

    packages = [name.removesuffix(".") + "." for name in listed("trusted_packages")]
    return listed("trusted_targets") + packages
