"""The training task behind `train.py`: a plain function of the composed config."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from imbalanced.imbalance.techniques import posthoc_tau, technique_callbacks
from imbalanced.imbalance.weights import strategy_name
from imbalanced.reporting.end_of_run import finish_run
from imbalanced.reporting.run_files import metrics_report, write_json
from imbalanced.runtime import apply_runtime_settings
from imbalanced.tasks.config_checks import check_config
from imbalanced.tasks.resume import check_resume, check_run_dir, keep_earlier_logs, load_checkpoint

log = logging.getLogger(__name__)


def build_datamodule(cfg: DictConfig) -> Any:
    sampler = OmegaConf.to_container(cfg.sampler, resolve=True) if cfg.get("sampler") else None
    # the class-weight config reaches the datamodule as a plain dict (saved, reported), so it is
    # passed to the partial rather than to instantiate (which would build its `_target_`)
    datamodule = instantiate(cfg.data, _partial_=True)
    return datamodule(class_weights=OmegaConf.to_container(cfg.class_weights, resolve=True), sampler=sampler)


def _group(cfg: DictConfig, name: str) -> dict[str, Any] | None:
    """A config group as a plain dict (kept in the checkpoint's hyperparameters); None when absent."""
    node = cfg.get(name)
    return None if node is None else OmegaConf.to_container(node, resolve=True)


def build_model(cfg: DictConfig, datamodule: Any) -> Any:
    return instantiate(
        cfg.model,
        num_classes=datamodule.num_classes,
        num_features=datamodule.num_features,
        class_names=datamodule.class_names,
        feature_names=datamodule.feature_names,
        loss=OmegaConf.to_container(cfg.loss, resolve=True),
        optimizer=_group(cfg, "optimizer"),
        scheduler=_group(cfg, "scheduler"),
        data_config=OmegaConf.to_container(cfg.data, resolve=True),
        feature_encoding=getattr(datamodule, "feature_encoding", None),
    )


def build_trainer(cfg: DictConfig) -> L.Trainer:
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    callbacks += technique_callbacks(cfg)  # DRW
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values() if c is not None]
    return instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)


@rank_zero_only
def _write(path: Path, content: dict[str, Any]) -> None:
    write_json(path, content)
    log.info("wrote %s", path)


def train(cfg: DictConfig) -> dict[str, Any]:
    """Check the config, set up data, train, then validate and test the best checkpoint.

    Returns the content of metrics.json.
    """
    check_config(cfg)
    apply_runtime_settings(cfg)
    check_run_dir(cfg)
    checkpoint = load_checkpoint(cfg.ckpt_path) if cfg.get("ckpt_path") else None
    L.seed_everything(cfg.seed, workers=True)
    output_dir = Path(cfg.paths.output_dir)

    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")  # data problems and bad weights surface here, before training
    if checkpoint is not None:
        check_resume(cfg, datamodule, checkpoint)
        del checkpoint
        keep_earlier_logs(output_dir)
    _write(output_dir / "class_weights.json", datamodule.weight_report())

    model = build_model(cfg, datamodule)
    model.posthoc_tau = posthoc_tau(cfg)  # post-hoc logit adjustment in validation (best ckpt) and test
    trainer = build_trainer(cfg)
    trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))

    best = "best" if trainer.checkpoint_callback and trainer.checkpoint_callback.best_model_path else None
    results = {
        "val": trainer.validate(model, datamodule=datamodule, ckpt_path=best, verbose=False)[0],
        "test": trainer.test(model, datamodule=datamodule, ckpt_path=best, verbose=False)[0],
    }
    report = metrics_report(results, datamodule.class_names, class_counts=datamodule.class_counts)
    _write(output_dir / "metrics.json", report)
    strategy = strategy_name(datamodule.weight_settings)
    finish_run(trainer, model, report, output_dir, strategy)  # table, plots
    return report
