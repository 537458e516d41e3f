#!/usr/bin/env python3
"""Submit a sweep of 100 and 1,000 points to the local Slurm with `llmb-run single` (target: 1,000 in < 5 s).

Four use cases x N/4 MAX_BATCH_SIZE values, one job per point, all in one job array (one sbatch call); each
array task then needs its own name (its use case) and, for generation, its own time limit. The shims put first
on PATH count the sbatch and scontrol calls and run the real commands. The jobs are cancelled right after.

Needs the project's local Slurm: `bash scripts/local-slurm.sh start`.

Usage: python bench/bench_submit.py [--sizes 100,1000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 5.0
USE_CASES = "reasoning:1000/1000 chat:128/128 summarization:8000/512 generation:512/8000"


def shim(folder: Path, name: str, calls: Path) -> None:
    real = shutil.which(name)
    path = folder / name
    path.write_text(f"#!/bin/sh\necho {name} >> {calls}\nexec {real} \"$@\"\n")
    path.chmod(0o755)


def submit(points: int, tmp: Path) -> tuple[float, int, dict[str, int], list[str]]:
    shims, calls = tmp / "shim", tmp / f"calls_{points}"
    shims.mkdir(exist_ok=True)
    for name in ("sbatch", "scontrol"):
        shim(shims, name, calls)
    batch_sizes = ",".join(str(8 + i) for i in range(points // 4))
    env = dict(os.environ, LLMB_INSTALL=str(tmp / f"install_{points}"), PATH=f"{shims}:{os.environ['PATH']}",
               PYTHONPATH=str(ROOT), USE_CASES=USE_CASES, MAX_BATCH_SIZE=batch_sizes, MAX_NUM_TOKENS="9000",
               SBATCH_ACCOUNT="llmb", CONTAINER_RUNTIME="none", SBATCH_GPUS_PER_NODE="4",
               SBATCH_PARTITION="cpu")
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed code runs: with bytecode caches
    argv = [sys.executable, "-m", "llmb_plugin_deepseek_r1.host.cli", "single", "-w", "inference_deepseek-r1",
            "-s", "671b", "--dtype", "nvfp4", "--scale", "4", "--json", "--no-preflight"]
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"llmb-run failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    jobs = json.loads(done.stdout)["jobs"]
    arrays = sorted({j["job_id"].split("_")[0] for j in jobs})
    subprocess.run(["scancel", *arrays], check=False)
    lines = calls.read_text().split() if calls.exists() else []
    counts = {name: lines.count(name) for name in ("sbatch", "scontrol")}
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    return elapsed, len(jobs), counts, warnings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000")
    args = parser.parse_args()
    if not shutil.which("sbatch"):
        print("sbatch not found: start the local Slurm first (bash scripts/local-slurm.sh start)")
        return 2
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for points in sorted(int(s) for s in args.sizes.split(",")):
            rows.append((points, *submit(points, Path(tmp))))
    print(f"{'points':>7}{'jobs':>7}{'wall s':>9}{'ms/job':>9}{'sbatch':>8}{'scontrol':>10}")
    for points, elapsed, jobs, counts, warnings in rows:
        print(f"{points:>7}{jobs:>7}{elapsed:>9.2f}{elapsed / jobs * 1000:>9.1f}{counts['sbatch']:>8}"
              f"{counts['scontrol']:>10}")
        for warning in warnings[:3]:
            print(f"  {warning}")
    (small, t_small), (big, t_big) = (rows[0][0], rows[0][1]), (rows[-1][0], rows[-1][1])
    print(f"growth: {big / small:.0f}x the points took {t_big / t_small:.1f}x the time")
    ok = t_big < TARGET_S and all(r[2] == r[0] for r in rows) and not any(r[4] for r in rows)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores (timings grow with it)")
    print(f"target: {big}-point sweep submitted in < {TARGET_S:.0f} s -> {'met' if ok else 'MISSED'} ({t_big:.2f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
