"""Evaluate a checkpoint: `python eval.py ckpt_path=CKPT [data.test_path=FILE]`."""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="configs", config_name="eval")
def main(cfg: DictConfig) -> None:
    # Heavy imports live inside the task so `--help` and `--cfg job` stay fast.
    from imbalanced.runs.exit_codes import run_task
    from imbalanced.tasks.evaluate import evaluate

    run_task(evaluate, cfg)


if __name__ == "__main__":
    from imbalanced.runs.exit_codes import run_app

    run_app(main)  # Hydra's composition errors: one line, exit code 2
