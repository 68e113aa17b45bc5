"""Loss identities from the papers: focal, logit adjustment, balanced softmax, LDAM."""

import pytest
import torch
import torch.nn.functional as F

from imbalanced.errors import UserError
from imbalanced.longtail.losses import LDAM, BalancedSoftmax, Focal, LogitAdjusted, ldam_margins, log_prior

C = 5
COUNTS = torch.tensor([500.0, 200.0, 60.0, 20.0, 5.0])


@pytest.fixture
def batch():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(64, C, generator=generator) * 3
    targets = torch.randint(0, C, (64,), generator=generator)
    weights = torch.rand(C, generator=generator) + 0.1
    return logits, targets, weights


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_focal_gamma_zero_is_weighted_cross_entropy(batch, reduction):
    logits, targets, weights = batch
    expected = F.cross_entropy(logits, targets, weight=weights, reduction=reduction)
    got = Focal(gamma=0.0, reduction=reduction)(logits, targets, weights, COUNTS)
    torch.testing.assert_close(got, expected)


def test_focal_matches_its_formula_and_down_weights_easy_samples(batch):
    logits, targets, _ = batch
    p_t = torch.softmax(logits, -1).gather(1, targets[:, None]).squeeze(1)
    expected = -((1 - p_t) ** 2) * p_t.log()
    got = Focal(gamma=2.0, reduction="none")(logits, targets, torch.ones(C), COUNTS)
    torch.testing.assert_close(got, expected)
    assert (got <= F.cross_entropy(logits, targets, reduction="none") + 1e-6).all()


def test_logit_adjusted_tau_zero_is_cross_entropy(batch):
    logits, targets, weights = batch
    expected = F.cross_entropy(logits, targets, weight=weights)
    torch.testing.assert_close(LogitAdjusted(tau=0.0)(logits, targets, weights, COUNTS), expected)


def test_logit_adjusted_adds_tau_log_prior(batch):
    logits, targets, _ = batch
    prior = COUNTS / COUNTS.sum()
    expected = F.cross_entropy(logits + 0.7 * prior.log(), targets)
    torch.testing.assert_close(LogitAdjusted(tau=0.7)(logits, targets, torch.ones(C), COUNTS), expected)


def test_balanced_softmax_is_logit_adjustment_with_tau_one(batch):
    logits, targets, weights = batch
    la = LogitAdjusted(tau=1.0, reduction="none")(logits, targets, weights, COUNTS)
    bs = BalancedSoftmax(reduction="none")(logits, targets, weights, COUNTS)
    torch.testing.assert_close(bs, la)
    # Ren et al.'s form: softmax with n_c * exp(z_c)
    expected = -(COUNTS * logits.exp()).div((COUNTS * logits.exp()).sum(1, keepdim=True)).log()
    expected = expected.gather(1, targets[:, None]).squeeze(1) * weights[targets]
    torch.testing.assert_close(bs, expected, rtol=1e-4, atol=1e-5)


def test_ldam_margins_follow_n_to_the_minus_quarter():
    margins = ldam_margins(COUNTS, max_margin=0.5)
    raw = 1.0 / COUNTS**0.25
    torch.testing.assert_close(margins, raw * 0.5 / raw.max())
    assert margins.max().item() == pytest.approx(0.5)
    assert margins.argmax().item() == C - 1  # the rarest class gets the largest margin
    # ratio of two margins is (n_j / n_i)^(1/4)
    assert (margins[0] / margins[3]).item() == pytest.approx((20 / 500) ** 0.25)


def test_ldam_loss_is_scaled_cross_entropy_with_margin_on_the_target(batch):
    logits, targets, _ = batch
    cosine = torch.tanh(logits)  # logits in [-1, 1] like a cosine head
    margins = ldam_margins(COUNTS, 0.3)
    shifted = cosine - F.one_hot(targets, C) * margins[targets][:, None]
    expected = F.cross_entropy(10.0 * shifted, targets)
    got = LDAM(max_margin=0.3, scale=10.0)(cosine, targets, torch.ones(C), COUNTS)
    torch.testing.assert_close(got, expected)


def test_prior_of_absent_class_is_finite_and_unset_counts_fail():
    assert torch.isfinite(log_prior(torch.tensor([10.0, 0.0]))).all()
    with pytest.raises(RuntimeError, match="class_counts are all zero"):
        log_prior(torch.zeros(3))


@pytest.mark.parametrize(
    "make",
    [
        lambda: Focal(gamma=-1),
        lambda: LogitAdjusted(tau=-0.5),
        lambda: LDAM(max_margin=0),
        lambda: LDAM(scale=-1),
    ],
)
def test_bad_loss_settings_are_user_errors(make):
    with pytest.raises(UserError, match="loss\\."):
        make()
