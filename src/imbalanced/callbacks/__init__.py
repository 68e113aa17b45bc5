"""Lightning callbacks of the template (configs/callbacks/)."""

from imbalanced.callbacks.fixed_batches import FixedTrainBatches
from imbalanced.callbacks.safeguards import GracefulInterrupt, NonFiniteLossGuard, ResumeCheckpoints
from imbalanced.callbacks.step_seed import StepSeed
from imbalanced.callbacks.test_stats import TestClassStats

__all__ = [
    "FixedTrainBatches",
    "GracefulInterrupt",
    "NonFiniteLossGuard",
    "ResumeCheckpoints",
    "StepSeed",
    "TestClassStats",
]
