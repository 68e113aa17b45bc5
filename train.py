"""Train a classifier on imbalanced data: `python train.py data=synthetic [overrides]`."""

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> float | None:
    # Heavy imports live inside the task so `--help` and `--cfg job` stay fast.
    from imbalanced.errors import TrainingInterrupted, UserError
    from imbalanced.training import train

    try:
        metrics = train(cfg)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            raise  # Hydra marks this job failed and the sweep goes on (sys.exit would end the sweep)
        sys.exit(2)
    except TrainingInterrupted as stop:
        print(f"interrupted: {stop}", file=sys.stderr)
        sys.exit(stop.exit_code)
    return metrics.get(cfg.get("optimized_metric", "val/balanced_accuracy"))


if __name__ == "__main__":
    main()
