"""n^q sampling: class frequencies, seeding per epoch, DDP shards of one global draw."""

import numpy as np
import pytest
import torch

from imbalanced.data.sampling import ClassAwareBatchSampler, class_probabilities, validate_sampler_settings
from imbalanced.errors import UserError

COUNTS = [4000, 1000, 250, 60]


def _labels() -> torch.Tensor:
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(COUNTS)])
    return labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(1))]


@pytest.mark.parametrize("q", [0.0, 0.5, 1.0])
def test_class_frequencies_match_n_to_the_q(q):
    labels = _labels()
    sampler = ClassAwareBatchSampler(labels, batch_size=512, q=q, seed=3)
    drawn = []
    for epoch in range(5):
        sampler.set_epoch(epoch)
        drawn.append(torch.cat(list(sampler)))
    drawn = torch.cat(drawn)
    assert len(drawn) == 5 * len(labels)  # epoch length = training-set size
    observed = np.bincount(labels[drawn].numpy(), minlength=len(COUNTS)) / len(drawn)
    expected = np.asarray(COUNTS, dtype=float) ** q
    expected /= expected.sum()
    np.testing.assert_allclose(observed, expected, atol=0.01)
    # within a class, samples are drawn uniformly: every tail sample shows up under q=0
    if q == 0.0:
        tail = torch.nonzero(labels == 3).squeeze(1)
        assert torch.isin(tail, drawn).all()


def test_class_probabilities_skip_absent_classes():
    p = class_probabilities(torch.tensor([10, 0, 40]), 0.0)
    torch.testing.assert_close(p, torch.tensor([0.5, 0.0, 0.5], dtype=torch.float64))


def test_draws_are_seeded_per_epoch():
    labels = _labels()
    a, b = (ClassAwareBatchSampler(labels, 256, q=0.0, seed=7) for _ in range(2))
    assert torch.equal(torch.cat(list(a)), torch.cat(list(b)))
    a.set_epoch(1)
    assert not torch.equal(torch.cat(list(a)), torch.cat(list(b)))


def test_ddp_ranks_take_disjoint_shares_of_one_global_draw():
    labels = _labels()[:5301]  # odd size: padded to a multiple of the world size
    single = ClassAwareBatchSampler(labels, 128, q=0.0, seed=5)
    ranks = [ClassAwareBatchSampler(labels, 128, q=0.0, seed=5, rank=r, world_size=2) for r in (0, 1)]
    for sampler in (single, *ranks):
        sampler.set_epoch(2)
    shards = [torch.cat(list(s)) for s in ranks]
    assert len(shards[0]) == len(shards[1]) == 2651  # ceil(5301 / 2)
    assert [len(list(iter(s))) for s in ranks] == [len(s) for s in ranks]
    global_draw = torch.cat(list(single))
    # the ranks' positions partition the global draw: rank r holds positions r, r+2, r+4, ...
    interleaved = torch.stack(shards, 1).reshape(-1)
    assert torch.equal(interleaved[: len(global_draw)], global_draw)
    assert torch.equal(interleaved[len(global_draw) :], global_draw[:1])  # padding (as DistributedSampler)


@pytest.mark.parametrize("settings", [{"q": -0.1}, {"q": 2}, {"q": "x"}, {"power": 0}])
def test_bad_sampler_settings_are_user_errors(settings):
    with pytest.raises(UserError, match="sampler"):
        validate_sampler_settings(settings)


def test_null_q_means_plain_shuffling():
    assert validate_sampler_settings({"q": None}) is None
    assert validate_sampler_settings({"q": 0}) == 0.0


def test_the_sampler_errors_say_what_is_valid():
    with pytest.raises(UserError) as error:
        validate_sampler_settings({"power": 0, "alpha": 1})
    assert str(error.value) == "sampler has unknown key(s) ['alpha', 'power']; valid: q"
    with pytest.raises(UserError) as error:
        validate_sampler_settings({"q": 1.5})
    assert str(error.value) == (
        "sampler.q=1.5 must be a number in [0, 1] (0 class-balanced, 0.5 square "
        "root, 1 instance-balanced) or null for plain shuffling"
    )
