"""Predict a table: `python predict.py ckpt_path=CKPT data.path=FILE [output_path=OUT.csv]`."""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="configs", config_name="predict")
def main(cfg: DictConfig) -> None:
    # Heavy imports live inside the task so `--help` and `--cfg job` stay fast.
    from imbalanced.runs.exit_codes import run_task
    from imbalanced.tasks.predict import predict

    run_task(predict, cfg)


if __name__ == "__main__":
    from imbalanced.runs.exit_codes import run_app

    run_app(main)  # Hydra's composition errors: one line, exit code 2
