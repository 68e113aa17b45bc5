"""Train a classifier on imbalanced data: `python train.py data=synthetic [overrides]`."""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> float | None:
    # Heavy imports live inside the task so `--help` and `--cfg job` stay fast.
    from imbalanced.runs.exit_codes import run_task
    from imbalanced.tasks.train import train

    metrics = run_task(train, cfg)
    return metrics.get(cfg.get("optimized_metric", "val/balanced_accuracy"))


if __name__ == "__main__":
    from imbalanced.runs.exit_codes import run_app

    run_app(main)  # Hydra's composition errors: one line, exit code 2
