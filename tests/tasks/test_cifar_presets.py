"""experiment=cifar10_lt_* / cifar100_lt_*: the long-tail papers' recipes, composed and trained briefly.

Composition checks every number of the recipe; one slow test trains two presets a few steps on a
tiny written CIFAR tree, on both data paths. The presets' published targets are in the README.
"""

from __future__ import annotations

import pytest
import torch
from cifar_settings import tiny_cifar_settings
from omegaconf import OmegaConf

from conftest import CONFIG_DIR
from imbalanced.optimization import RunLength, build_optimizer, build_scheduler
from imbalanced.runs.config_checks import check_config

PRESETS = [
    f"{data}_lt_{method}"
    for data in ("cifar10", "cifar100")
    for method in ("ce", "ldam_drw", "logit_adjusted")
]
MODEL = {"ce": "resnet32", "logit_adjusted": "resnet32", "ldam_drw": "resnet32_cosine"}


def preset_model(preset: str) -> str:
    """The backbone a preset names, following its defaults to the preset it builds on."""
    for entry in OmegaConf.load(CONFIG_DIR / "experiment" / f"{preset}.yaml").defaults:
        if isinstance(entry, str) and not entry.startswith("override"):
            found = preset_model(entry)
        elif OmegaConf.is_dict(entry) and "override /model" in entry:
            return entry["override /model"]
    return found


def papers_lr(epoch: int) -> float:
    """lr at an epoch: 5 linear warm-up epochs to 0.1, x0.01 at 160 and again at 180."""
    if epoch < 5:
        return 0.1 * (epoch + 1) / 5
    return 0.1 * (0.01 ** ((epoch >= 160) + (epoch >= 180)))


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_is_the_papers_recipe(compose_cfg, tmp_path, preset):
    variant, method = preset.split("_lt_")
    cfg = compose_cfg(f"experiment={preset}", *tiny_cifar_settings(tmp_path, variant, preset=True))
    check_config(cfg)
    choices = cfg.hydra.runtime.choices
    assert choices.data == f"{variant}_lt" and cfg.data.variant == variant and cfg.data.imbalance_ratio == 100
    assert preset_model(preset) == MODEL[method] and choices.model == MODEL[method]
    assert cfg.data.batch_size == 128 and cfg.trainer.max_epochs == 200
    assert cfg.callbacks.model_checkpoint.monitor is None  # the final model is tested
    assert (cfg.data.augment.crop_padding, cfg.data.augment.flip, cfg.data.augment.mix) == (4, True, "none")
    loss = cfg.loss
    if method == "ce":
        assert loss._target_.endswith(".CrossEntropy") and choices.class_weights == "none"
        assert cfg.drw_start_epoch is None
    elif method == "logit_adjusted":
        assert loss._target_.endswith(".LogitAdjusted") and loss.tau == 1.0
        assert choices.class_weights == "none"
    else:
        assert loss._target_.endswith(".LDAM") and (loss.max_margin, loss.scale) == (0.5, 30.0)
        assert cfg.class_weights._target_.endswith(".effective_number") and cfg.class_weights.beta == 0.9999
        assert cfg.drw_start_epoch == 160
    optimizer = OmegaConf.to_container(cfg.optimizer, resolve=True)
    assert optimizer["_target_"] == "torch.optim.SGD" and not optimizer["nesterov"]
    assert (optimizer["lr"], optimizer["momentum"], optimizer["weight_decay"]) == (0.1, 0.9, 0.0002)
    built = build_optimizer(optimizer, torch.nn.Linear(2, 2).parameters())
    schedule = build_scheduler(
        OmegaConf.to_container(cfg.scheduler, resolve=True), built, lambda: RunLength(200, 1, 200)
    )
    for epoch in range(200):
        assert built.param_groups[0]["lr"] == pytest.approx(papers_lr(epoch), rel=1e-9), epoch
        built.step()
        schedule["scheduler"].step()


@pytest.mark.slow
def test_presets_train_a_few_steps_on_both_data_paths(compose_cfg, tmp_path):
    pytest.importorskip("torchvision", reason="the dataloader path's v2 transforms need the vision extra")
    from imbalanced.tasks.train import train

    runs = [
        ("cifar10_lt_ldam_drw", ["data.augment.mix=mixup", "drw_start_epoch=1"]),  # batched, in memory
        (
            "cifar100_lt_logit_adjusted",
            [
                "data.backend=dataloader",
                "data.augment.autoaugment=true",
                "data.augment.erasing=0.5",
                "data.augment.mix=cutmix",
            ],
        ),
    ]
    for preset, extra in runs:
        variant = preset.split("_lt_")[0]
        tiny = tiny_cifar_settings(tmp_path / variant, variant, preset=True)
        cfg = compose_cfg(
            f"experiment={preset}",
            *tiny,
            "data.batch_size=16",
            "trainer.max_epochs=2",
            "+trainer.limit_train_batches=2",
            "+trainer.limit_val_batches=1",
            "scheduler.warmup_epochs=1",
            "scheduler.milestones=[1]",
            "callbacks.progress_bar.refresh_rate=0",
            *extra,
            f"paths.output_dir={tmp_path / preset}",
        )
        report = train(cfg)
        assert 0.0 <= report["test/balanced_accuracy"] <= 1.0, preset
        assert sorted(p.name for p in (tmp_path / preset / "checkpoints").glob("*.ckpt")) == [
            "final-epoch001.ckpt",
            "last.ckpt",
        ], preset
