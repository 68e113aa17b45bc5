import torch

from imbalanced.data.in_memory_batches import IndexBatchSampler, TensorBatchDataset, batch_loader


def test_one_epoch_covers_every_sample_once_and_is_seeded():
    sampler = IndexBatchSampler(103, 10, shuffle=True, seed=7)
    first = torch.cat(list(sampler))
    assert sorted(first.tolist()) == list(range(103)) and len(sampler) == 11
    again = torch.cat(list(IndexBatchSampler(103, 10, shuffle=True, seed=7)))
    assert torch.equal(first, again)
    sampler.set_epoch(1)
    assert not torch.equal(first, torch.cat(list(sampler)))


def test_ddp_training_shards_are_disjoint_and_equally_long():
    shards = [IndexBatchSampler(101, 8, seed=3, rank=r, world_size=2).local_indices() for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == 51  # padded like DistributedSampler
    assert set(torch.cat(shards).tolist()) == set(range(101))


def test_ddp_evaluation_shards_cover_each_sample_exactly_once():
    shards = [IndexBatchSampler(101, 8, shuffle=False, rank=r, world_size=2, pad=False) for r in range(2)]
    merged = torch.cat([s.local_indices() for s in shards])
    assert sorted(merged.tolist()) == list(range(101))
    assert [len(s) for s in shards] == [7, 7]


def test_loader_yields_whole_batches():
    x, y = torch.arange(20.0).reshape(10, 2), torch.arange(10)
    loader = batch_loader(TensorBatchDataset(x, y), IndexBatchSampler(10, 4, shuffle=False))
    batches = list(loader)
    assert [len(b[1]) for b in batches] == [4, 4, 2]
    assert torch.equal(batches[0][0], x[:4]) and torch.equal(batches[2][1], y[8:])


def test_training_never_yields_a_single_sample_batch():
    train = IndexBatchSampler(21, 10, seed=1)
    assert [len(b) for b in train] == [10, 10] and len(train) == 2
    evaluation = IndexBatchSampler(21, 10, shuffle=False, pad=False)
    assert [len(b) for b in evaluation] == [10, 10, 1] and len(evaluation) == 3
