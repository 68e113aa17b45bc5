"""DDP on the CPU (2 processes, gloo): the ranks train on disjoint shares of each epoch, for both data
backends, with plain shuffling and with class-balanced sampling, launched by Lightning and by torchrun.

"Disjoint" for plain shuffling: each epoch is one seeded permutation of the training split; rank r
takes positions r, r+2, ... of it (padded by one sample when the split is odd, as DistributedSampler
does), so the ranks' samples are disjoint and their union is the whole split. For class-aware
sampling an epoch is one global draw with replacement (a sample can be drawn twice, as oversampling
intends); the ranks take disjoint positions of that one draw, and interleaved they give it back.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from conftest import ROOT, read_json, run_cli

# refit_with_validation=false: the recorder sees the first training's epochs only
SETTINGS = [
    "data.n_samples=1000",
    "data.batch_size=64",
    "trainer.max_epochs=2",
    "callbacks.progress_bar.refresh_rate=0",
    "refit_with_validation=false",
]
BACKENDS = {
    "in_memory": [],
    # one persistent worker per rank: the sampler runs in the main process, the samples come from workers
    "dataloader": ["data.backend=dataloader", "data.num_workers=1", "data.persistent_workers=true"],
}


def _plan(datamodule, rank: int, world_size: int, epoch: int) -> torch.Tensor:
    datamodule.trainer = SimpleNamespace(global_rank=rank, world_size=world_size)
    plan = datamodule.batch_plan("train", train=True)
    plan.set_epoch(epoch)
    return torch.cat(list(plan))


def _launch(launcher: str, run_dir: Path, overrides: list[str], env: dict[str, str]):
    """`trainer=ddp_cpu` starts its second process itself (Lightning); under torchrun both processes
    are started by torchrun and share one run directory, each rank logging to a file of its own."""
    if launcher == "lightning":
        return run_cli("train.py", *overrides, run_dir=run_dir, timeout=600, env=env)
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    assert torchrun, "torchrun is installed with torch"
    return run_cli(
        "train.py",
        *overrides,
        "hydra.job.name=train_rank${oc.env:RANK}",
        run_dir=run_dir,
        timeout=600,
        env={**env, "OMP_NUM_THREADS": "1"},
        launcher=[torchrun, "--standalone", "--nproc_per_node=2"],
    )


# plain shuffling on the in-memory backend, launched by torchrun; the class-balanced draw on the
# DataLoader backend, which serves the same batch plan through its workers (the plan's sharding is
# one code for both backends), launched by Lightning
CASES = [("in_memory", "none", "torchrun"), ("dataloader", "class_balanced", "lightning")]


@pytest.mark.slow
@pytest.mark.parametrize(("backend", "sampler", "launcher"), CASES, ids=["-".join(c) for c in CASES])
def test_ddp_ranks_train_on_disjoint_shares_of_each_epoch(tmp_path, backend, sampler, launcher):
    from omegaconf import OmegaConf

    from imbalanced.from_config import build_datamodule

    record = tmp_path / "seen"
    run_dir = tmp_path / "run"
    overrides = [
        *SETTINGS,
        "trainer=ddp_cpu",
        f"sampler={sampler}",
        *BACKENDS[backend],
        "+callbacks.record._target_=shard_recorder.RecordTrainSamples",
        f"+callbacks.record.path={record}",
    ]
    result = _launch(launcher, run_dir, overrides, {"PYTHONPATH": f"{ROOT / 'src'}:{ROOT / 'tests'}"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "test/balanced_accuracy" in read_json(run_dir / "metrics.json")  # one run, tested once
    if launcher == "torchrun":  # one run directory, each rank's own log
        for rank in (0, 1):
            assert f"rank {rank} class_weights" in (run_dir / f"train_rank{rank}.log").read_text()
    seen = [json.loads((record / f"seen_rank{r}.json").read_text()) for r in (0, 1)]

    datamodule = build_datamodule(OmegaConf.load(run_dir / ".hydra" / "config.yaml"))
    datamodule.setup("fit")
    size = len(datamodule.splits.y_train)
    assert len(seen[0]) == len(seen[1]) == 2  # epochs
    for epoch in range(2):
        shards = [torch.tensor(seen[r][epoch]) for r in (0, 1)]
        assert len(shards[0]) == len(shards[1]) == (size + 1) // 2  # equal steps on both ranks
        # what each rank trained on is exactly its share of the epoch's plan, in order
        for rank in (0, 1):
            assert torch.equal(shards[rank], _plan(datamodule, rank, 2, epoch))
        global_order = _plan(datamodule, 0, 1, epoch)  # the single-process epoch
        interleaved = torch.stack(shards, 1).reshape(-1)
        assert torch.equal(interleaved[:size], global_order)  # disjoint positions, union = the epoch
        assert torch.equal(interleaved[size:], global_order[: len(interleaved) - size])  # padding
        if sampler == "none":  # a permutation: disjoint samples, union the whole training split
            assert set(shards[0].tolist()).isdisjoint(shards[1][: size // 2].tolist())
            assert set(shards[0].tolist()) | set(shards[1].tolist()) == set(range(size))
        else:  # n^0: every class drawn about equally often, with repeats
            labels = torch.as_tensor(datamodule.splits.y_train)[global_order]
            counts = torch.bincount(labels, minlength=datamodule.num_classes)
            assert counts.min() > 0.6 * size / datamodule.num_classes
    epochs = [torch.tensor(seen[0][e]) for e in range(2)]
    assert not torch.equal(epochs[0], epochs[1])  # set_epoch reached the sampler: a new order per epoch
