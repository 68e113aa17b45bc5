"""Each training step's random draws (dropout) seeded from where the step is in the run."""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch


def step_seed(seed: int, rank: int, epoch: int, batch_idx: int) -> int:
    """A well-mixed 63-bit seed for one training step of one rank."""
    return int(np.random.SeedSequence([seed, rank, epoch, batch_idx]).generate_state(1, np.uint64)[0] >> 1)


class StepSeed(L.Callback):
    """Seeds torch's global generator before every training batch from (seed, rank, epoch, batch).

    Dropout draws its masks from torch's global random stream. Lightning does not save that stream
    in checkpoints, and a resumed run draws from it in another order (its sanity check and loaders
    draw first), so a resumed run would train on other masks than the uninterrupted run. Seeding
    every batch from its place in the run gives the same masks however the run was interrupted
    (also mid-epoch). Ranks get different seeds, so DDP ranks draw independent masks.
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = int(seed)

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        seed = step_seed(self.seed, trainer.global_rank, trainer.current_epoch, batch_idx)
        # the CPU generator directly: torch.manual_seed visits every backend, ~100 µs per step
        torch.default_generator.manual_seed(seed)
        if torch.cuda.is_initialized():  # dropout on a GPU draws from the current device's generator
            torch.cuda.manual_seed(seed)
