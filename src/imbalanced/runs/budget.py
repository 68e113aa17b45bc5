"""How long to train when the user did not say: a number of optimizer steps, not of epochs.

A fixed number of epochs is far too short on a small dataset (900 rows at batch 256 give 3 steps per
epoch) and needlessly long on a large one. With `trainer.max_epochs: null` (the default) and no
`trainer.max_steps`, the run gets

    epochs = clamp(ceil(budget.min_steps / steps_per_epoch), budget.min_epochs, budget.max_epochs)

where `steps_per_epoch` is the number of training batches on one device. A datamodule may declare
its own step budget (`budget_min_steps`, e.g. `data.budget_steps` of data=image_folder, where a
convolution step costs far more than a table's step); it then replaces `budget.min_steps`. It may
also declare a cap on passes over its training split (`budget_max_epochs`, e.g.
`data.budget_max_epochs` of data=image_folder), which then replaces `budget.max_epochs` and also
lowers the `budget.min_epochs` floor: a folder smaller than one batch would otherwise spend its
whole step budget on one-batch epochs, each with its validation and checkpoint. An explicit
`trainer.max_epochs` (or `trainer.max_steps`) always wins and the budget is not used.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from omegaconf import DictConfig, OmegaConf

from imbalanced.errors import UserError
from imbalanced.value_checks import check_int

log = logging.getLogger(__name__)


def budget_epochs(steps_per_epoch: int, min_steps: int, min_epochs: int, max_epochs: int) -> int:
    """Epochs that give at least `min_steps` optimizer steps, within [min_epochs, max_epochs]."""
    check_int("budget.min_steps", min_steps, minimum=1)
    check_int("budget.min_epochs", min_epochs, minimum=1)
    check_int("budget.max_epochs", max_epochs, minimum=1)
    if min_epochs > max_epochs:
        raise UserError(
            f"budget.min_epochs={min_epochs} is invalid; allowed: at most budget.max_epochs={max_epochs}"
        )
    wanted = math.ceil(min_steps / max(int(steps_per_epoch), 1))
    return int(min(max(wanted, min_epochs), max_epochs))


def uses_budget(cfg: DictConfig) -> bool:
    """True when neither trainer.max_epochs nor trainer.max_steps was given."""
    max_steps = OmegaConf.select(cfg, "trainer.max_steps", default=None)
    return (
        OmegaConf.select(cfg, "trainer.max_epochs", default=None) is None
        and (max_steps is None or max_steps == -1)
        and cfg.get("budget") is not None
    )


def check_budget(cfg: DictConfig) -> None:
    """The budget's settings, before any data is loaded."""
    if uses_budget(cfg):
        budget_epochs(1, **_settings(cfg))


def apply_budget(cfg: DictConfig, datamodule: Any, refit: bool = False) -> int | None:
    """Set `cfg.trainer.max_epochs` from the budget (returns it), or None when the user set the length.

    Logs the plan of the whole run up front: epochs and steps, and the second training when the
    run refits on training + validation (`refit`)."""
    then = refit_plan(cfg) if refit else ""
    if not uses_budget(cfg):
        if OmegaConf.select(cfg, "trainer.fast_dev_run", default=False):
            return None  # debug=fdr announces itself
        epochs = OmegaConf.select(cfg, "trainer.max_epochs", default=None)
        max_steps = OmegaConf.select(cfg, "trainer.max_steps", default=None)
        if max_steps is not None and max_steps != -1:
            log.info("training: at most %d steps (trainer.max_steps)%s", max_steps, then)
        elif epochs is not None:
            log.info(
                "training: %d epochs x %d steps (trainer.max_epochs)%s",
                epochs,
                len(datamodule.train_dataloader()),
                then,
            )
        return None
    steps = len(datamodule.train_dataloader())
    settings, names = _settings(cfg), {"min_steps": "budget.min_steps", "max_epochs": "budget.max_epochs"}
    if datamodule.budget_min_steps is not None:
        settings["min_steps"], names["min_steps"] = int(datamodule.budget_min_steps), "data.budget_steps"
    cap = getattr(datamodule, "budget_max_epochs", None)
    if cap is not None:  # the data's own cap on passes wins over the step budget and the epoch floor
        settings["max_epochs"], names["max_epochs"] = int(cap), "data.budget_max_epochs"
        settings["min_epochs"] = min(settings["min_epochs"], int(cap))
    epochs = budget_epochs(steps, **settings)
    cfg.trainer.max_epochs = epochs
    log.info(
        "training budget: %d epochs x %d steps (%s)%s",
        epochs,
        steps,
        _length_reason(epochs, steps, settings, names),
        then,
    )
    return epochs


def _length_reason(epochs: int, steps: int, settings: dict[str, Any], names: dict[str, str]) -> str:
    """Which setting decided the length, and the one that trains longer."""
    plan = f"{names['min_steps']}={settings['min_steps']}"
    longer = names["min_steps"]
    if epochs == settings["max_epochs"] and epochs * steps < settings["min_steps"]:  # the cap decided
        plan += f", at most {names['max_epochs']}={epochs} passes over the training split"
        longer = names["max_epochs"]
    return f"{plan}; to train longer: trainer.max_epochs=N or {longer}=N"


def refit_plan(cfg: DictConfig) -> str:
    """The budget line's tail for `refit_with_validation` (runs/refit.py)."""
    length = (
        "as many epochs as the best checkpoint's"
        if cfg.get("test_checkpoint", "last") == "best"
        else "the same epochs"
    )
    return (
        f"; then a refit: a fresh model trains {length} on training + validation rows and is the "
        "one tested (refit_with_validation=false skips it)"
    )


def _settings(cfg: DictConfig) -> dict[str, Any]:
    budget = cfg.budget
    return {"min_steps": budget.min_steps, "min_epochs": budget.min_epochs, "max_epochs": budget.max_epochs}
