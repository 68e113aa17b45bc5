"""Shared test helpers: run the command-line apps in a subprocess, compose configs in-process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_run import real_checkpoint  # noqa: F401 - a shared fixture (a tiny real run)

# The suite runs as two workers (`pytest -n 2`) on a 2-core machine, and many tests start runs of
# their own: with torch's default of one intra-op thread per core, their OpenMP threads would spin
# against each other. One thread each, here and (through the environment) in the runs they start,
# unless the environment already says otherwise. Set before any test imports torch.
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = ROOT / "configs"

# Small, fast settings for end-to-end runs (seconds on a 2-core CPU).
FAST = [
    "data.n_samples=3000",
    "trainer.max_epochs=2",
    "callbacks.progress_bar.refresh_rate=0",
]


def run_cli(
    script: str,
    *overrides: str,
    run_dir: Path | None = None,
    timeout: int = 300,
    env: dict[str, str] | None = None,
    launcher: list[str] | None = None,
) -> subprocess.CompletedProcess:
    """Run `python <script> overrides...` from the repo root; the run directory is `run_dir`.
    `launcher` replaces `python` (e.g. `torchrun --nproc_per_node=2`)."""
    args = [*(launcher or [sys.executable]), str(ROOT / script), *overrides]
    if run_dir is not None:
        args.append(f"hydra.run.dir={run_dir}")
    full_env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HYDRA_FULL_ERROR": "0", **(env or {})}
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=full_env)


def record_checkpoint_reads(monkeypatch) -> list:
    """The `weights_only` argument of every `torch.load` from now on, in order (reads still happen)."""
    import torch

    reads = []
    load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: reads.append(k.get("weights_only")) or load(*a, **k))
    return reads


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


@pytest.fixture
def compose_cfg():
    """Compose the train config like `python train.py` would, with `overrides`."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    def _compose(*overrides: str, config_name: str = "train"):
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            return compose(config_name=config_name, overrides=list(overrides), return_hydra_config=True)

    yield _compose
    GlobalHydra.instance().clear()
