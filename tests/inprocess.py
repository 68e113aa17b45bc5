"""Run `python <script> overrides...` inside the test process: Hydra's command-line parsing, config
composition and the app's `error: ...` / exit code 2 handling, without a new interpreter (imports
of torch and Lightning cost seconds per subprocess)."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra

ROOT = Path(__file__).resolve().parents[1]


def run_app(
    script: str, *overrides: str, run_dir: Path, monkeypatch: pytest.MonkeyPatch | None = None
) -> int:
    """Exit code of the app (0 when it returns); its stderr is left to pytest's capsys. Without a
    `monkeypatch` (module- and session-scoped fixtures have none) `sys.argv` is patched for the call."""
    if monkeypatch is None:
        with pytest.MonkeyPatch.context() as own:
            return run_app(script, *overrides, run_dir=run_dir, monkeypatch=own)
    GlobalHydra.instance().clear()
    monkeypatch.setattr(sys, "argv", [script, *overrides, f"hydra.run.dir={run_dir}"])
    try:
        runpy.run_path(str(ROOT / script), run_name="__main__")
    except SystemExit as exit_:
        return int(exit_.code or 0)
    finally:
        GlobalHydra.instance().clear()
    return 0
