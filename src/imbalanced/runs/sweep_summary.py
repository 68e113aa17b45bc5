"""Hydra callback that summarizes a multirun: summary.csv, summary.md and comparison.png.

Configured under `hydra.callbacks` (configs/hydra/default.yaml), so every
`python train.py -m a=1,2 b=x,y` writes into its sweep directory one row per job: the job's
overrides, the validation metric the sweep optimizes and the key test metrics beside it (read from
the job's metrics.json), best first **by the validation metric** (`optimized_metric`,
`val/balanced_accuracy` by default): ranking by a test metric would select on the test set, so a
test metric given as `sort_by` is refused with a warning. It works with any
launcher and sweeper: it reads the job directories (`.hydra/overrides.yaml`, `metrics.json`) instead of
keeping state in memory. The summary is rewritten after every job (so a sweep that stops half way
still has one) and once more at the end. A job without metrics.json is marked `failed`, with the
error message when Hydra reported one.

Light imports only (this module is loaded by Hydra before every run); matplotlib is imported when
the plot is drawn.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import re
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from imbalanced.runs.atomic_writes import write_text_atomic, write_with

log = logging.getLogger(__name__)

DEFAULT_SORT_BY = "val/balanced_accuracy"
DEFAULT_METRICS = (
    "test/balanced_accuracy",
    "test/macro_f1",
    "test/accuracy",
    "test/worst_class_recall",
)
FAILURE_FILE = "job_failed.txt"


def _natural_key(text: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def find_jobs(sweep_dir: Path) -> list[Path]:
    """Job directories under a sweep directory: those Hydra wrote a `.hydra/overrides.yaml` into,
    or that hold a metrics.json."""
    jobs = {path.parent.parent for path in sweep_dir.glob("**/.hydra/overrides.yaml")}
    jobs |= {path.parent for path in sweep_dir.glob("**/metrics.json")}
    jobs.discard(sweep_dir)
    return sorted(jobs, key=lambda path: _natural_key(str(path.relative_to(sweep_dir))))


def _overrides(job_dir: Path) -> dict[str, str]:
    path = job_dir / ".hydra" / "overrides.yaml"
    if not path.exists():
        return {}
    pairs = OmegaConf.to_container(OmegaConf.load(path)) or []
    return dict(str(item).split("=", 1) if "=" in str(item) else (str(item), "") for item in pairs)


def _metric(metrics: Mapping[str, Any], name: str) -> float | None:
    if name == "test/worst_class_recall":  # the minority-class number people look for first
        values = [v for v in metrics.get("test/per_class_recall") or [] if v is not None]
        return min(values) if values else None
    value = metrics.get(name)
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def collect_rows(sweep_dir: Path, metrics: Sequence[str] = DEFAULT_METRICS) -> list[dict[str, Any]]:
    """One row per job: job, status, error, overrides (key -> value), and each metric (or None)."""
    rows = []
    for job_dir in find_jobs(sweep_dir):
        row: dict[str, Any] = {
            "job": str(job_dir.relative_to(sweep_dir)),
            "overrides": _overrides(job_dir),
            "status": "ok",
            "error": "",
        }
        metrics_file = job_dir / "metrics.json"
        try:
            content = json.loads(metrics_file.read_text()) if metrics_file.exists() else None
        except json.JSONDecodeError:
            content = None
        if content is None:
            row["status"] = "failed"
            failure = job_dir / FAILURE_FILE
            row["error"] = failure.read_text().strip() if failure.exists() else "no metrics.json"
            content = {}
        row.update({name: _metric(content, name) for name in metrics})
        rows.append(row)
    return rows


def sort_rows(rows: list[dict[str, Any]], sort_by: str, mode: str = "max") -> list[dict[str, Any]]:
    """Best first by `sort_by`; jobs without the metric (failed) last, in job order."""
    sign = -1.0 if mode == "max" else 1.0
    return sorted(rows, key=lambda row: (row.get(sort_by) is None, sign * (row.get(sort_by) or 0.0)))


def override_columns(rows: Sequence[Mapping[str, Any]], fallback_to_all: bool = True) -> list[str]:
    """Override keys that differ between jobs (all keys if none differ), in first-seen order."""
    keys: list[str] = []
    for row in rows:
        keys += [key for key in row["overrides"] if key not in keys]
    varying = [key for key in keys if len({row["overrides"].get(key) for row in rows}) > 1]
    return varying or (keys if fallback_to_all else [])


def _format(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def table(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    keys = override_columns(rows)
    header = ["rank", "job", *keys, "status", *metrics, "overrides", "error"]
    body = []
    for rank, row in enumerate(rows, start=1):
        overrides = " ".join(f"{k}={v}" for k, v in row["overrides"].items())
        body.append(
            [
                str(rank),
                row["job"],
                *(row["overrides"].get(k, "") for k in keys),
                row["status"],
                *(_format(row.get(m)) for m in metrics),
                overrides,
                row["error"],
            ]
        )
    return header, body


def to_csv(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(body)
    return buffer.getvalue()


def to_markdown(header: Sequence[str], body: Sequence[Sequence[str]], title: str) -> str:
    def escape(cell: str) -> str:
        return cell.replace("|", "\\|").replace("\n", " ")

    shown = [i for i, name in enumerate(header) if name != "overrides"]  # columns already show them
    lines = [
        f"# {title}",
        "",
        "| " + " | ".join(header[i] for i in shown) + " |",
        "|" + "|".join("---" for _ in shown) + "|",
    ]
    lines += ["| " + " | ".join(escape(line[i]) for i in shown) + " |" for line in body]
    return "\n".join(lines) + "\n"


def comparison_figure(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str]) -> Any:
    """Horizontal grouped bars: one group per job (best on top), one bar per test metric."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    keys = override_columns(rows, fallback_to_all=False)
    labels = [
        textwrap.fill(
            f"#{row['job']} "
            + " ".join(f"{k}={row['overrides'].get(k, '')}" for k in keys)
            + (" (failed)" if row["status"] != "ok" else ""),
            width=48,
        )
        for row in rows
    ]
    shown = list(dict.fromkeys([metrics[0], *(m for m in metrics if m.startswith("test/"))]))[:4]
    lines = max(label.count("\n") + 1 for label in labels)
    row_height = max(0.22 * len(shown), 0.16 * lines) + 0.25
    figure = Figure(figsize=(10.0, max(3.0, row_height * len(rows) + 1.2)), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    positions = np.arange(len(rows))[::-1]  # best on top
    height = 0.8 / max(len(shown), 1)
    for index, metric in enumerate(shown):
        values = [np.nan if row.get(metric) is None else row[metric] for row in rows]
        bars = axes.barh(
            positions + (len(shown) / 2 - index - 0.5) * height,
            values,
            height=height,
            label=metric if index == 0 else metric.removeprefix("test/"),
        )
        axes.bar_label(
            bars, labels=["" if np.isnan(v) else f"{v:.3f}" for v in values], fontsize=6, padding=2
        )
    axes.set_yticks(positions, labels=labels, fontsize=8)
    axes.set_xlim(0.0, 1.0)
    axes.set_xlabel(f"score (ranked by {metrics[0]})")
    axes.grid(axis="x", alpha=0.3)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    axes.set_title(f"sweep comparison ({len(rows)} jobs, best first)")
    return figure


def _write_text(path: Path, text: str) -> None:
    write_text_atomic(path, text)  # unique temp name: jobs may end in parallel


def ranking_metric(sort_by: str | None) -> str:
    """`sort_by`, unless it is a test metric (or unset): then the validation default, with a warning."""
    if not sort_by:
        return DEFAULT_SORT_BY
    if str(sort_by).startswith("test/"):
        log.warning(
            "the sweep summary does not rank by %s (that would select on the test set); it ranks "
            "by %s and shows the test metrics beside it",
            sort_by,
            DEFAULT_SORT_BY,
        )
        return DEFAULT_SORT_BY
    return str(sort_by)


def write_summary(
    sweep_dir: str | Path,
    metrics: Sequence[str] = DEFAULT_METRICS,
    sort_by: str = DEFAULT_SORT_BY,
    mode: str = "max",
    plot: bool = True,
) -> list[dict[str, Any]]:
    """Write summary.csv, summary.md and comparison.png into `sweep_dir`; returns the rows, best first
    by the validation metric `sort_by` (its column first, the test metrics beside it)."""
    sweep_dir = Path(sweep_dir)
    sort_by = ranking_metric(sort_by)
    metrics = [sort_by, *(m for m in metrics if m != sort_by)]
    rows = sort_rows(collect_rows(sweep_dir, metrics), sort_by, mode)
    header, body = table(rows, metrics)
    _write_text(sweep_dir / "summary.csv", to_csv(header, body))
    failed = sum(row["status"] != "ok" for row in rows)
    title = (
        f"Sweep summary: {len(rows)} jobs, {failed} failed, best first by {sort_by} "
        "(validation; the test metrics are shown, never used to rank)"
    )
    _write_text(sweep_dir / "summary.md", to_markdown(header, body, title))
    if plot and rows:
        figure = comparison_figure(rows, metrics)
        write_with(sweep_dir / "comparison.png", lambda f: figure.savefig(f, format="png"), binary=True)
    return rows


class SweepSummary(Callback):
    """Hydra callback (`hydra.callbacks.sweep_summary`, configs/hydra/default.yaml)."""

    def __init__(
        self,
        metrics: Sequence[str] = DEFAULT_METRICS,
        sort_by: str | None = DEFAULT_SORT_BY,
        mode: str = "max",
        plot: bool = True,
    ) -> None:
        if mode not in ("max", "min"):
            raise ValueError(f"hydra.callbacks.sweep_summary.mode={mode!r}; valid: max, min")
        self.metrics = list(metrics)
        self.sort_by = ranking_metric(sort_by)
        self.mode = mode
        self.plot = plot

    def _summarize(self, sweep_dir: Path) -> None:
        try:
            rows = write_summary(sweep_dir, self.metrics, self.sort_by, self.mode, self.plot)
        except Exception as error:  # the summary must never turn a finished sweep into a crash
            log.warning("could not write the sweep summary in %s: %s", sweep_dir, error)
            return
        log.info("sweep summary (%d jobs): %s", len(rows), sweep_dir / "summary.md")

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if config.hydra.mode != RunMode.MULTIRUN:
            return
        if job_return.status == JobStatus.FAILED:
            error = job_return._return_value  # `.return_value` would re-raise the job's exception
            job_dir = Path(config.hydra.runtime.output_dir)
            job_dir.mkdir(parents=True, exist_ok=True)
            write_text_atomic(job_dir / FAILURE_FILE, f"{type(error).__name__}: {error}\n")
        self._summarize(Path(config.hydra.sweep.dir))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._summarize(Path(config.hydra.sweep.dir))
