"""Timing of whole `llmb-run` commands for the bench scripts: as a user runs them, with bytecode caches."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def time_llmb_run(args: list[str], install: Path, runs: int, **env: str) -> tuple[list[float], str]:
    """Run `llmb-run ARGS...` ``runs`` times against ``install``; the wall time of each run and the last stdout."""
    environ = dict(os.environ, LLMB_INSTALL=str(install), PYTHONPATH=str(ROOT), **env)
    environ.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed code runs: with bytecode caches
    argv = [sys.executable, "-m", "llmb_plugin_deepseek_r1.host.cli", *args]
    times, out = [], ""
    for _ in range(runs):
        start = time.perf_counter()
        out = subprocess.run(argv, env=environ, capture_output=True, text=True, check=True).stdout
        times.append(time.perf_counter() - start)
    return times, out
