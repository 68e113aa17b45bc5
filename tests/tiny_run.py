"""One tiny real training run shared by the robustness tests (in-process, a few seconds)."""

from __future__ import annotations

import pytest
from inprocess import run_app


@pytest.fixture(scope="session")
def real_checkpoint(tmp_path_factory):
    """The last checkpoint of `train.py data=synthetic` on 300 rows for one epoch (20 features x0..x19)."""
    run_dir = tmp_path_factory.mktemp("real") / "run"
    code = run_app(
        "train.py",
        "data.n_samples=300",
        "trainer.max_epochs=1",
        "callbacks.progress_bar.refresh_rate=0",
        run_dir=run_dir,
    )
    assert code == 0
    return run_dir / "checkpoints" / "last.ckpt"


def feature_table(path, rows: int = 3):
    """A CSV predict.py accepts for `real_checkpoint` (features x0..x19)."""
    header = ",".join(f"x{i}" for i in range(20))
    path.write_text(header + "\n" + "\n".join(",".join([str(r)] * 20) for r in range(rows)) + "\n")
    return path
