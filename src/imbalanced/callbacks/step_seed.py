"""Each training step's random draws (dropout) seeded from where the step is in the run."""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch

# numpy's SeedSequence constants (numpy/random/bit_generator.pyx, the hash of O'Neill's seed_seq)
_MASK32 = 0xFFFFFFFF
_INIT_A, _MULT_A, _INIT_B, _MULT_B = 0x43B0D7E5, 0x931E8875, 0x8B51F9DD, 0x58F38DED
_MIX_MULT_L, _MIX_MULT_R = 0xCA01F9DD, 0x4973F715
_POOL_SIZE = 4


def step_seed(seed: int, rank: int, epoch: int, batch_idx: int) -> int:
    """A well-mixed 63-bit seed for one training step of one rank."""
    return int(np.random.SeedSequence([seed, rank, epoch, batch_idx]).generate_state(1, np.uint64)[0] >> 1)


def step_seeds(seed: int, rank: int, epoch: int, count: int) -> list[int]:
    """`[step_seed(seed, rank, epoch, b) for b in range(count)]` in one vectorized pass.

    numpy's SeedSequence costs tens of µs per call in Python overhead, a share of a short training
    step; this is the same hash (SeedSequence's entropy mixing and `generate_state`) over all
    batches of an epoch at once in uint64 arrays masked to 32 bits, so every value equals
    `step_seed`'s (a test compares them, large seeds included).
    """
    if min(seed, rank, epoch) < 0 or count >= 2**32:
        return [step_seed(seed, rank, epoch, b) for b in range(count)]  # numpy's own checks and errors
    fixed = [word for value in (seed, rank, epoch) for word in _uint32_words(value)]
    data = [np.uint64(word) for word in fixed] + [np.arange(count, dtype=np.uint64)]
    hash_const = _INIT_A

    def hashmix(value: Any) -> Any:
        nonlocal hash_const
        value = value ^ np.uint64(hash_const)
        hash_const = (hash_const * _MULT_A) & _MASK32
        value = (value * np.uint64(hash_const)) & np.uint64(_MASK32)
        return value ^ (value >> np.uint64(16))

    def mix(x: Any, y: Any) -> Any:
        result = (np.uint64(_MIX_MULT_L) * x - np.uint64(_MIX_MULT_R) * y) & np.uint64(_MASK32)
        return result ^ (result >> np.uint64(16))

    with np.errstate(over="ignore"):  # uint64 products wrap modulo 2**64; only the low 32 bits are kept
        pool = [hashmix(data[i] if i < len(data) else np.uint64(0)) for i in range(_POOL_SIZE)]
        for source in range(_POOL_SIZE):
            for target in range(_POOL_SIZE):
                if source != target:
                    pool[target] = mix(pool[target], hashmix(pool[source]))
        for source in range(_POOL_SIZE, len(data)):
            for target in range(_POOL_SIZE):
                pool[target] = mix(pool[target], hashmix(data[source]))
        hash_const = _INIT_B
        halves = []
        for index in range(2):  # generate_state(1, uint64): two uint32 words, low word first
            value = pool[index] ^ np.uint64(hash_const)
            hash_const = (hash_const * _MULT_B) & _MASK32
            value = (value * np.uint64(hash_const)) & np.uint64(_MASK32)
            halves.append(value ^ (value >> np.uint64(16)))
        seeds = (halves[0] | (halves[1] << np.uint64(32))) >> np.uint64(1)
    return np.broadcast_to(seeds, (count,)).tolist()


def _uint32_words(value: int) -> list[int]:
    """An int as SeedSequence reads it: 32-bit words, least significant first, at least one."""
    words = [value & _MASK32]
    while value := value >> 32:
        words.append(value & _MASK32)
    return words


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
        self._seeds: list[int] = []  # this (rank, epoch)'s step seeds, computed in one pass
        self._seeds_of: tuple[int, int] | None = None

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        seed = self._step_seed(trainer.global_rank, trainer.current_epoch, batch_idx)
        # the CPU generator directly: torch.manual_seed visits every backend, ~100 µs per step
        torch.default_generator.manual_seed(seed)
        if torch.cuda.is_initialized():  # dropout on a GPU draws from the current device's generator
            torch.cuda.manual_seed(seed)

    def _step_seed(self, rank: int, epoch: int, batch_idx: int) -> int:
        if self._seeds_of != (rank, epoch) or batch_idx >= len(self._seeds):
            count = max(batch_idx + 1, 2 * len(self._seeds) if self._seeds_of == (rank, epoch) else 256)
            self._seeds, self._seeds_of = step_seeds(self.seed, rank, epoch, count), (rank, epoch)
        return self._seeds[batch_idx]
