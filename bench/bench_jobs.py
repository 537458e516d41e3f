#!/usr/bin/env python3
"""Time `llmb-run jobs list --json` over 500 and 5,000 submission records (target: < 0.3 s at 5,000, linear).

Records have the shape `llmb-run single` writes (one per Slurm job id); their states come from the real Slurm
client commands (sacct, squeue: run `bash scripts/local-slurm.sh start` first; ids unknown to Slurm fall back to
the jobs' own status files, which a third of them have). Whole command, median of several runs.

Usage: python bench/bench_jobs.py [--sizes 500,5000] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from _timing import time_llmb_run

TARGET_S = 0.3
WORKLOAD = "inference_deepseek-r1"


def write_records(install: Path, start: int, stop: int) -> None:
    wdir = install / "workloads" / WORKLOAD / "experiments" / ".llmb"
    (wdir / "submitted").mkdir(parents=True, exist_ok=True)
    (wdir / "jobs").mkdir(parents=True, exist_ok=True)
    for index in range(start, stop):
        job_id = f"{900000 + index // 8}_{index % 8}"  # array tasks, ids Slurm does not know
        record = {"workload": WORKLOAD, "model_size": "671b", "dtype": "nvfp4", "scale": 4, "gpu_type": "gb200",
                  "submitted": 1.79e9 + index, "command_line": "llmb-run single -w inference_deepseek-r1",
                  "job_ids": [job_id], "job_id": job_id, "executor": "slurm",
                  "submitit_folder": str(wdir / "submitit" / job_id),
                  "plan": {"name": f"{WORKLOAD}_671b_nvfp4_chat", "slurm": {"time_min": 30}, "use_cases": []},
                  "knobs": {"MAX_BATCH_SIZE": str(16 * (1 + index % 8))}, "environment": {}}
        (wdir / "submitted" / f"{job_id}.json").write_text(json.dumps(record, indent=2))
        if index % 3 == 0:
            (wdir / "jobs" / f"{job_id}.json").write_text(json.dumps({"state": "COMPLETED", "job_id": job_id}))


def time_list(install: Path, runs: int) -> tuple[float, int]:
    times, out = time_llmb_run(["jobs", "list", "--json"], install, runs)
    rows = len(json.loads(out))
    return statistics.median(times), rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="500,5000")
    parser.add_argument("--runs", type=int, default=11)
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    results, done = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        install = Path(tmp)
        for size in sizes:
            write_records(install, done, size)
            os.sync()  # the records' writeback would otherwise compete with the timed runs
            done = size
            results.append((size, *time_list(install, args.runs)))
    print(f"{'records':>8}{'median s':>10}{'rows':>8}{'us/record':>11}")
    for size, seconds, rows in results:
        print(f"{size:>8}{seconds:>10.3f}{rows:>8}{seconds / size * 1e6:>11.1f}")
    (small, t_small, _), (big, t_big, _) = results[0], results[-1]
    print(f"growth: {big / small:.0f}x the records took {t_big / t_small:.1f}x the time")
    ok = t_big < TARGET_S
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores (timings grow with it)")
    print(f"target: jobs list over {big} records < {TARGET_S} s -> {'met' if ok else 'MISSED'} ({t_big:.3f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
