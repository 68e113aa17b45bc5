"""Class-weight strategies: callables from training-split class counts to weights.

Every built-in formula and its normalization lives here, and only here:

| strategy           | weight of class c                               | normalization             |
|--------------------|-------------------------------------------------|---------------------------|
| `none`             | 1                                               | none (all ones)           |
| `balanced`         | N / (C * n_c)  (scikit-learn's formula)         | sum_c w_c * n_c = N       |
| `inverse`          | 1 / n_c                                         | sum_c w_c = C             |
| `inverse_sqrt`     | 1 / sqrt(n_c)                                   | sum_c w_c = C             |
| `effective_number` | (1 - beta) / (1 - beta^n_c)  (Cui et al. 2019)  | sum_c w_c = C (the paper) |
| `manual`           | the list given                                  | none (used as given)      |

`balanced` makes the mean per-sample weight over the training split 1; the others make the mean
per-class weight 1. N is the number of training samples, C the number of classes, n_c the training
count of class c.

`auto` (the default) names no formula: the training task replaces it before building the data with
`balanced`, or with `none` when the run already corrects the prior (a loss that declares
`corrects_prior`, post-hoc adjustment, a class-balanced sampler) and no DRW schedule waits for
weights (longtail/techniques.py `choose_class_weights`).

A strategy is a `_target_` in configs/class_weights/: a function `counts -> weights` (settings as
keyword arguments, `_partial_: true`) or a class whose constructor takes (and checks) the settings
and whose instances are called with the counts. A fork adds one with a function and a YAML file.
`compute_class_weights` checks what any strategy returns (one finite weight >= 0 per class, not all
zero) and names the classes a strategy refuses because they have no training sample.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from imbalanced.errors import UserError, unwrap_user_errors

WeightStrategy = Callable[[np.ndarray], np.ndarray]


class ClassWeightError(UserError):
    """A class-weight setting or the class counts it needs are invalid."""


class EmptyClassError(ClassWeightError):
    """Classes with 0 training samples that a strategy cannot weight (indices into the counts)."""

    def __init__(self, missing: Sequence[int]) -> None:
        self.missing = [int(i) for i in missing]
        super().__init__(f"class(es) {self.missing} have 0 training samples")


def require_every_class(counts: np.ndarray) -> np.ndarray:
    """The counts as float64; raises EmptyClassError when a class has no training sample."""
    counts = np.asarray(counts, dtype=np.float64)
    missing = np.flatnonzero(counts <= 0)
    if missing.size:
        raise EmptyClassError(missing.tolist())
    return counts


def _sum_to_num_classes(raw: np.ndarray) -> np.ndarray:
    return raw * (len(raw) / raw.sum())


# ---- the built-in strategies ---------------------------------------------------------------------
def none(counts: np.ndarray) -> np.ndarray:
    """Uniform weights (no re-weighting); classes without training samples are fine."""
    return np.ones(len(counts), dtype=np.float64)


def balanced(counts: np.ndarray) -> np.ndarray:
    """scikit-learn's `compute_class_weight("balanced")`: N / (C * n_c)."""
    counts = require_every_class(counts)
    return counts.sum() / (len(counts) * counts)


def inverse(counts: np.ndarray) -> np.ndarray:
    return _sum_to_num_classes(1.0 / require_every_class(counts))


def inverse_sqrt(counts: np.ndarray) -> np.ndarray:
    return _sum_to_num_classes(1.0 / np.sqrt(require_every_class(counts)))


class effective_number:  # noqa: N801 - named like the other strategies (and the config option)
    """Cui et al. 2019: w_c ∝ (1 - beta) / (1 - beta^n_c), normalized to sum to C."""

    def __init__(self, beta: float = 0.999) -> None:
        if beta is None or isinstance(beta, bool) or not isinstance(beta, (int, float)):
            raise ClassWeightError(f"class_weights.beta={beta!r} must be a number in [0, 1)")
        if not (0.0 <= float(beta) < 1.0):
            raise ClassWeightError(f"class_weights.beta={beta} is outside [0, 1); use e.g. 0.999")
        self.beta = float(beta)

    def __call__(self, counts: np.ndarray) -> np.ndarray:
        counts = require_every_class(counts)
        beta = self.beta
        # beta=0 gives E_n = 1 for every class, i.e. uniform weights.
        effective = -np.expm1(counts * math.log(beta)) / (1.0 - beta) if beta > 0 else np.ones_like(counts)
        return _sum_to_num_classes(1.0 / effective)


class manual:  # noqa: N801 - named like the other strategies (and the config option)
    """The weights given, one finite value >= 0 per class, used as they are."""

    def __init__(self, weights: Sequence[float] | None = None) -> None:
        if weights is None or isinstance(weights, (str, bytes)):
            raise ClassWeightError(
                "class_weights=manual needs a list: class_weights.weights=[w0,w1,...], one "
                "non-negative number per class"
            )
        try:
            values = [float(w) for w in weights]
        except (TypeError, ValueError):
            raise ClassWeightError(
                f"class_weights.weights={list(weights)} must be a list of numbers"
            ) from None
        bad = [w for w in values if not math.isfinite(w) or w < 0]
        if bad:
            raise ClassWeightError(
                f"class_weights.weights={values} has negative or non-finite values {bad}; "
                "every weight must be a finite number >= 0"
            )
        if values and sum(values) == 0:
            raise ClassWeightError("class_weights.weights are all zero; at least one must be > 0")
        self.weights = np.asarray(values, dtype=np.float64)

    def __call__(self, counts: np.ndarray) -> np.ndarray:
        if len(self.weights) != len(counts):
            raise ClassWeightError(
                f"class_weights.weights has {len(self.weights)} values but the data has {len(counts)} "
                "classes; give exactly one weight per class"
            )
        return self.weights.copy()


AUTO = "auto"


def auto(counts: np.ndarray) -> np.ndarray:
    """`class_weights=auto` names no formula: the training task replaces it with `balanced` or
    `none` from the loss (longtail/techniques.py `choose_class_weights`) before the data is built."""
    raise ClassWeightError(
        "class_weights=auto is chosen from the loss by train.py; a datamodule built elsewhere needs "
        f"a strategy: {', '.join(name for name in BUILT_IN if name != AUTO)}"
    )


BUILT_IN: dict[str, Callable[..., Any]] = {
    "none": none,
    "balanced": balanced,
    "inverse": inverse,
    "inverse_sqrt": inverse_sqrt,
    "effective_number": effective_number,
    "manual": manual,
    AUTO: auto,
}


def built_in_config(name: str) -> dict[str, Any]:
    """The config-group form of a built-in function strategy (`none`, `balanced`, ...)."""
    return {"_target_": f"{__name__}.{name}", "_partial_": True}


# ---- from a config to weights ------------------------------------------------------------------
def _plain(config: Any) -> Any:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(config, resolve=True) if OmegaConf.is_config(config) else config


def strategy_name(config: Mapping[str, Any] | str | None) -> str:
    """`balanced` for `{_target_: imbalanced.longtail.weights.balanced}` (class_weights.json, plots)."""
    config = _plain(config)
    if config is None:
        return "none"
    if isinstance(config, str):
        return config
    if "_target_" in config:
        return str(config["_target_"]).rsplit(".", 1)[-1]
    return str(config.get("strategy", "none"))


def strategy_settings(config: Mapping[str, Any] | str | None) -> dict[str, Any]:
    """The strategy's own settings (`beta`, `weights`, ...), without Hydra's keys."""
    config = _plain(config)
    if not isinstance(config, Mapping):
        return {}
    return {k: v for k, v in config.items() if k != "strategy" and not k.startswith("_")}


def resolve_strategy(
    config: Mapping[str, Any] | str | WeightStrategy | None, **settings: Any
) -> WeightStrategy:
    """The callable for a `class_weights` config; its constructor checks the settings (no data needed).

    Accepts a config with `_target_` (the config group), a built-in's name with its settings
    (`"effective_number", beta=0.99`), the same as `{"strategy": name, **settings}`, a callable, or
    None (uniform weights).
    """
    config = _plain(config)
    if callable(config) and not isinstance(config, Mapping):
        return config
    if config is None:
        return none
    if isinstance(config, Mapping) and "_target_" in config:
        from hydra.errors import InstantiationException
        from hydra.utils import instantiate

        try:
            with unwrap_user_errors():
                built = instantiate(dict(config))
        except InstantiationException as error:
            raise ClassWeightError(
                f"class_weights={strategy_name(config)} cannot be built from {strategy_settings(config)}: "
                f"{error.__cause__ or error}"
            ) from None
        if not callable(built):
            raise ClassWeightError(
                f"class_weights._target_={config['_target_']} gives {type(built).__name__}, not a "
                "callable counts -> weights (a function needs `_partial_: true` for its settings)"
            )
        return built
    name = strategy_name(config)
    settings = {**strategy_settings(config), **settings}
    if name not in BUILT_IN:
        raise ClassWeightError(
            f"class_weights.strategy={name!r} is unknown; valid: {', '.join(BUILT_IN)} "
            "(or a `_target_` in configs/class_weights/)"
        )
    factory = BUILT_IN[name]
    if isinstance(factory, type):
        return factory(**settings)
    if settings:
        raise ClassWeightError(f"class_weights={name} takes no settings; got {settings}")
    return factory


def compute_class_weights(
    counts: Sequence[int] | np.ndarray,
    strategy: Mapping[str, Any] | str | WeightStrategy | None = "balanced",
    class_names: Sequence[str] | None = None,
    **settings: Any,
) -> np.ndarray:
    """Weights (float64, one per class) for the training-split `counts` under `strategy`."""
    counts = np.asarray(counts, dtype=np.float64)
    name = strategy_name(strategy) if not callable(strategy) else getattr(strategy, "__name__", "custom")
    try:
        weights = resolve_strategy(strategy, **settings)(counts)
    except EmptyClassError as error:
        names = [str(class_names[i]) if class_names is not None else str(i) for i in error.missing]
        raise ClassWeightError(
            f"class_weights={name} needs every class in the training split, but class(es) {names} "
            "have 0 training samples. Add samples of these classes to the training data, or use "
            "class_weights=none or class_weights=manual."
        ) from None
    weights = np.asarray(weights, dtype=np.float64)
    if (
        weights.shape != counts.shape
        or not np.all(np.isfinite(weights))
        or np.any(weights < 0)
        or not np.any(weights > 0)
    ):
        raise ClassWeightError(
            f"class_weights={name} gave weights {np.round(weights, 6).tolist()} for {len(counts)} "
            "classes; allowed: one finite weight >= 0 per class, at least one > 0"
        )
    return weights


def class_counts(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Count integer labels 0..num_classes-1 without touching any sample (O(N), one pass)."""
    return np.bincount(np.asarray(labels).ravel(), minlength=num_classes)[:num_classes]
