"""Startup: `train.py --cfg job`, `--help` and one tiny epoch end to end, against `import lightning`.

Each command runs in a fresh subprocess `--repeats` times, interleaved; medians are printed with
their ratio to `python -c "import lightning"` measured in the same run. `--cfg job` and `--help` never
import torch or lightning (tests/runs/test_speed_paths.py asserts it), so they cost Python + Hydra only.

    python benchmarks/startup.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def commands(run_dir: str) -> dict[str, list[str]]:
    python = sys.executable
    return {
        'python -c "import lightning"': [python, "-c", "import lightning"],
        'python -c "import torch"': [python, "-c", "import torch"],
        "train.py --cfg job": [python, "train.py", "--cfg", "job"],
        "train.py --help": [python, "train.py", "--help"],
        "train.py, 1 tiny epoch (1000 samples)": [
            python,
            "train.py",
            "data.n_samples=1000",
            "trainer.max_epochs=1",
            "callbacks.progress_bar.refresh_rate=0",
            f"hydra.run.dir={run_dir}",
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    with tempfile.TemporaryDirectory() as run_dir:
        todo = commands(run_dir)
        times: dict[str, list[float]] = {name: [] for name in todo}
        for _ in range(args.repeats):
            for name, argv in todo.items():
                start = time.perf_counter()
                subprocess.run(argv, cwd=ROOT, env=env, check=True, capture_output=True)
                times[name].append(time.perf_counter() - start)
    baseline = statistics.median(times['python -c "import lightning"'])
    print(f"python {sys.version.split()[0]}; median of {args.repeats} fresh processes (wall seconds)")
    print(f"{'command':40s} {'median s':>9} {'vs import lightning':>20}   runs")
    for name, values in times.items():
        median = statistics.median(values)
        runs = ", ".join(f"{v:.2f}" for v in values)
        print(f"{name:40s} {median:>9.2f} {median / baseline:>19.2f}x   {runs}")


if __name__ == "__main__":
    main()
