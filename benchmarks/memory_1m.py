"""Peak memory of a 1,000,000-row training run (README limits section).

    python benchmarks/memory_1m.py                 # data=synthetic data.n_samples=1000000
    python benchmarks/memory_1m.py --tabular       # writes a 1M-row CSV, trains with data=tabular

Runs `train.py` in a child process for 1 epoch and reports the child's peak resident memory
(ru_maxrss from getrusage(RUSAGE_CHILDREN)) and the wall time. Extra arguments are passed to train.py.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def write_csv(path: Path, rows: int, features: int, seed: int = 0) -> None:
    """A 1M-row, 20-feature, 5-class long-tailed CSV with string labels."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    shares = 20.0 ** (-np.arange(5) / 4)
    labels = rng.choice(5, size=rows, p=shares / shares.sum())
    x = rng.normal(size=(rows, features)).astype(np.float32) + labels[:, None] * 0.5
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(features)])
    frame["label"] = np.array(["a", "b", "c", "d", "e"])[labels]
    frame.to_csv(path, index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--tabular", action="store_true", help="train on a generated CSV file")
    args, extra = parser.parse_known_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.tabular:
            csv = Path(tmp) / "rows.csv"
            write_csv(csv, args.rows, 20)
            data = ["data=tabular", f"data.path={csv}", "data.target=label"]
        else:
            data = ["data=synthetic", f"data.n_samples={args.rows}"]
        command = [
            sys.executable,
            str(ROOT / "train.py"),
            *data,
            "trainer.max_epochs=1",
            "data.batch_size=1024",
            "callbacks.progress_bar.refresh_rate=0",
            f"hydra.run.dir={Path(tmp) / 'run'}",
            *extra,
        ]
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        start = time.perf_counter()
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if result.returncode != 0:
            sys.exit(f"train.py failed ({result.returncode}):\n{result.stderr[-3000:]}")
        peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
        print(
            f"rows={args.rows} source={'tabular CSV' if args.tabular else 'synthetic'} "
            f"peak_rss={peak_mib:.0f} MiB wall={seconds:.0f} s"
        )


if __name__ == "__main__":
    main()
