"""Batched image augmentation (the fast path), torchvision v2 per-sample transforms, MixUp/CutMix
and the losses of mixed targets (longtail/mixed_targets.py)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate

from imbalanced.data.images.augment import (
    AugmentSettings,
    ImageNormalize,
    augment_batch,
    random_crop,
    random_erasing,
    random_flip,
    sample_transform,
)
from imbalanced.data.images.mixing import mix_batch
from imbalanced.longtail.losses import CrossEntropy, LogitAdjusted, log_prior
from imbalanced.longtail.mixed_targets import mixed_loss

IMAGES = torch.randint(1, 256, (64, 3, 32, 32), dtype=torch.uint8)  # no zero pixel: padding is visible


def test_random_crop_is_a_window_of_the_zero_padded_image():
    torch.manual_seed(0)
    out = random_crop(IMAGES, 4)
    assert out.shape == IMAGES.shape and out.dtype == torch.uint8
    padded = F.pad(IMAGES, (4, 4, 4, 4))
    offsets = set()
    for i in range(len(IMAGES)):
        found = [
            (dy, dx)
            for dy in range(9)
            for dx in range(9)
            if torch.equal(padded[i, :, dy : dy + 32, dx : dx + 32], out[i])
        ]
        assert found, i
        offsets.add(found[0])
    assert len(offsets) > 10  # an offset per image, not one per batch
    assert torch.equal(random_crop(IMAGES, 0), IMAGES)


def test_random_flip_flips_about_half_of_the_images():
    torch.manual_seed(0)
    out = random_flip(IMAGES)
    flipped = [torch.equal(out[i], IMAGES[i].flip(-1)) for i in range(len(IMAGES))]
    kept = [torch.equal(out[i], IMAGES[i]) for i in range(len(IMAGES))]
    assert all(f or k for f, k in zip(flipped, kept, strict=True)) and 16 < sum(flipped) < 48


def test_random_erasing_zeroes_one_rectangle_per_erased_image():
    torch.manual_seed(0)
    out = random_erasing(IMAGES, 1.0)
    for i in range(len(IMAGES)):
        zero = (out[i] == 0).all(0)
        rows, cols = zero.any(1).nonzero().flatten(), zero.any(0).nonzero().flatten()
        assert len(rows) and zero[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].all()
        assert torch.equal(out[i][:, ~zero], IMAGES[i][:, ~zero])
        assert 0.02 * 1024 * 0.5 <= zero.sum() <= 0.33 * 1024 * 1.5
    assert torch.equal(random_erasing(IMAGES, 0.0), IMAGES)


def test_augment_batch_keeps_uint8_images():
    assert augment_batch(IMAGES, AugmentSettings(erasing=0.5, autoaugment=True)).dtype == torch.uint8


def test_the_v2_transform_keeps_uint8_images():
    pytest.importorskip("torchvision")  # the `vision` extra (installed in CI); the batch path needs none
    settings = AugmentSettings(erasing=0.5, autoaugment=True)
    transform = sample_transform(settings, size=32)
    out = transform(IMAGES[0])
    assert out.shape == (3, 32, 32) and out.dtype == torch.uint8
    assert isinstance(sample_transform(AugmentSettings(crop_padding=0, flip=False), 32), torch.nn.Identity)


def test_image_normalize():
    norm = ImageNormalize(3, channels_last=True)
    norm.mean.fill_(100.0)
    norm.std.fill_(50.0)
    out = norm(IMAGES)
    assert out.dtype == torch.float32 and out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, (IMAGES.float() - 100) / 50)


@pytest.mark.parametrize("mode", ["mixup", "cutmix"])
def test_mix_batch(mode):
    torch.manual_seed(1)
    labels = torch.arange(64) % 10
    mixed, y_a, y_b, lam = mix_batch(IMAGES, labels, mode, alpha=1.0)
    assert torch.equal(y_a, labels) and 0.0 <= lam <= 1.0
    if mode == "mixup":
        partner = (mixed - lam * IMAGES.float()) / (1 - lam)  # each partner is an image of the batch
        for i in range(64):
            assert any(torch.allclose(partner[i], IMAGES[j].float(), atol=1e-2) for j in range(64)), i
    else:  # the kept area is lam: pixels that differ from the original lie in one box
        differs = (mixed != IMAGES).any(1)
        assert differs.float().mean(dim=(1, 2)).max() <= 1 - lam + 1e-6


COUNTS = torch.tensor([100.0, 30.0, 10.0, 3.0])
WEIGHTS = torch.tensor([0.2, 0.5, 1.0, 2.3])
LOSSES = ["cross_entropy", "focal", "logit_adjusted", "balanced_softmax", "ldam"]


def _loss(name, reduction="mean"):
    from omegaconf import OmegaConf

    from conftest import CONFIG_DIR

    config = OmegaConf.load(CONFIG_DIR / "loss" / f"{name}.yaml")
    config.reduction = reduction
    return instantiate(config)


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_lam_one_is_the_unmixed_loss(name, reduction):
    torch.manual_seed(0)
    logits, y, other = torch.randn(32, 4), torch.randint(0, 4, (32,)), torch.randint(0, 4, (32,))
    criterion = _loss(name, reduction)
    plain = criterion(logits, y, WEIGHTS, COUNTS)
    if reduction == "none":
        plain = criterion.normalize(plain, y, WEIGHTS)
    scalar, sums, shares = mixed_loss(criterion, logits, y, other, 1.0, WEIGHTS, COUNTS)
    torch.testing.assert_close(scalar, plain)
    assert torch.equal(shares, torch.bincount(y, minlength=4).float())


def test_mixed_cross_entropy_is_soft_target_cross_entropy_weighted_by_mixed_class_weights():
    torch.manual_seed(0)
    logits, y_a, y_b, lam = torch.randn(32, 4), torch.randint(0, 4, (32,)), torch.randint(0, 4, (32,)), 0.3
    soft = lam * F.one_hot(y_a, 4) + (1 - lam) * F.one_hot(y_b, 4)
    scalar, _, _ = mixed_loss(CrossEntropy(), logits, y_a, y_b, lam, torch.ones(4), COUNTS)
    torch.testing.assert_close(scalar, F.cross_entropy(logits, soft.float()))
    w = lam * WEIGHTS[y_a] + (1 - lam) * WEIGHTS[y_b]
    expected = lam * WEIGHTS[y_a] * F.cross_entropy(logits, y_a, reduction="none") + (1 - lam) * WEIGHTS[
        y_b
    ] * F.cross_entropy(logits, y_b, reduction="none")
    scalar, sums, shares = mixed_loss(CrossEntropy(), logits, y_a, y_b, lam, WEIGHTS, COUNTS)
    torch.testing.assert_close(scalar, expected.sum() / w.sum())
    torch.testing.assert_close(shares.sum(), torch.tensor(32.0))
    torch.testing.assert_close(sums.sum(), expected.sum())


def test_mixed_logit_adjustment_adjusts_the_logits_before_the_soft_target():
    torch.manual_seed(0)
    logits, y_a, y_b, lam = torch.randn(32, 4), torch.randint(0, 4, (32,)), torch.randint(0, 4, (32,)), 0.7
    soft = (lam * F.one_hot(y_a, 4) + (1 - lam) * F.one_hot(y_b, 4)).float()
    scalar, _, _ = mixed_loss(LogitAdjusted(tau=1.0), logits, y_a, y_b, lam, torch.ones(4), COUNTS)
    torch.testing.assert_close(scalar, F.cross_entropy(logits + log_prior(COUNTS), soft))
