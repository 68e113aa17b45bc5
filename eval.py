"""Evaluate a checkpoint: `python eval.py ckpt_path=CKPT [data.test_path=FILE]`."""

import sys

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="configs", config_name="eval")
def main(cfg: DictConfig) -> None:
    # Heavy imports live inside the task so `--help` and `--cfg job` stay fast.
    from imbalanced.errors import UserError
    from imbalanced.evaluation import evaluate as task

    try:
        task(cfg)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
