import pytest
import torch
import torch.nn.functional as F

from imbalanced.errors import UserError
from imbalanced.longtail.losses import CrossEntropy


@pytest.fixture
def batch():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 5, generator=generator)
    targets = torch.randint(0, 5, (64,), generator=generator)
    weights = torch.tensor([0.2, 0.5, 1.0, 3.0, 7.0])
    return logits, targets, weights, torch.tensor([500.0, 200, 100, 30, 10])


def weighted_nll(logits, targets, weights):
    """w_{y_i} * -log softmax(z_i)_{y_i}, written out (not the kernel the loss itself calls)."""
    return -logits.log_softmax(-1)[torch.arange(len(targets)), targets] * weights[targets]


def test_mean_matches_pytorch_weighted_cross_entropy(batch):
    logits, targets, weights, counts = batch
    expected = F.cross_entropy(logits, targets, weight=weights)
    torch.testing.assert_close(CrossEntropy("mean")(logits, targets, weights, counts), expected)
    # ... which divides by the summed target weights, not by the batch size
    per_sample = weighted_nll(logits, targets, weights)
    torch.testing.assert_close(
        CrossEntropy("mean")(logits, targets, weights, counts), per_sample.sum() / weights[targets].sum()
    )


def test_none_normalized_by_weight_sum_equals_mean(batch):
    logits, targets, weights, counts = batch
    loss = CrossEntropy("none")
    per_sample = loss(logits, targets, weights, counts)
    assert per_sample.shape == (64,)
    torch.testing.assert_close(
        loss.normalize(per_sample, targets, weights), CrossEntropy("mean")(logits, targets, weights, counts)
    )
    by_batch = CrossEntropy("none", normalize="batch_size")
    torch.testing.assert_close(by_batch.normalize(per_sample, targets, weights), per_sample.mean())


def test_sum_and_base_class_agree_with_fused_kernel(batch):
    logits, targets, weights, counts = batch
    fused = CrossEntropy("sum")(logits, targets, weights, counts)
    torch.testing.assert_close(fused, weighted_nll(logits, targets, weights).sum())
    torch.testing.assert_close(
        CrossEntropy("none")(logits, targets, weights, counts), weighted_nll(logits, targets, weights)
    )


def test_unknown_reduction_is_named():
    with pytest.raises(UserError, match="loss.reduction='avg' is invalid; allowed: one of 'mean', 'sum'"):
        CrossEntropy("avg")
