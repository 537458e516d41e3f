#!/usr/bin/env python3
"""Time `llmb-run single ... --dry-run` (target: well under 0.5 s), beside a bare `python -c pass` start.

Usage: python bench/bench_dry_run.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time


def time_command(argv: list[str], env: dict[str, str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as install:
        env = dict(os.environ, LLMB_INSTALL=install)
        dry = [sys.executable, "-m", "llmb_plugin_deepseek_r1.host.cli", "single", "-w", "inference_deepseek-r1",
               "-s", "671b", "--dtype", "nvfp4", "--scale", "4", "--dry-run"]
        python_only = time_command([sys.executable, "-c", "pass"], env, args.runs)
        dry_run = time_command(dry, env, args.runs)
        dry_json = time_command(dry + ["--json"], env, args.runs)
    base = statistics.median(python_only)
    print(f"{'command':<34}{'median s':>10}{'max s':>10}{'x python start':>16}")
    for name, times in (("python -c pass", python_only), ("llmb-run single --dry-run", dry_run),
                        ("llmb-run single --dry-run --json", dry_json)):
        print(f"{name:<34}{statistics.median(times):>10.3f}{max(times):>10.3f}{statistics.median(times) / base:>16.1f}")
    worst = max(statistics.median(dry_run), statistics.median(dry_json))
    print(f"target: dry run under 0.500 s -> {'OK' if worst < 0.5 else 'TOO SLOW'} ({worst:.3f} s)")
    return 0 if worst < 0.5 else 1


if __name__ == "__main__":
    sys.exit(main())
