#!/usr/bin/env python3
"""Submit 32 jobs (4 use cases x 8 MAX_BATCH_SIZE points) to the local Slurm with `llmb-run single` and print the
wall time and the number of sbatch calls (target: one call, under 2 seconds). The jobs are cancelled right after.

Needs the project's local Slurm: `bash scripts/local-slurm.sh start`. sbatch calls are counted by a shim put first on
PATH that records each call and runs the real sbatch.

Usage: python bench/bench_submit.py
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    real = shutil.which("sbatch")
    if not real:
        print("sbatch not found: start the local Slurm first (bash scripts/local-slurm.sh start)")
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        shim_dir = Path(tmp) / "shim"
        shim_dir.mkdir()
        calls = Path(tmp) / "sbatch_calls"
        shim = shim_dir / "sbatch"
        shim.write_text(f"#!/bin/sh\necho call >> {calls}\nexec {real} \"$@\"\n")
        shim.chmod(0o755)
        env = dict(os.environ, LLMB_INSTALL=str(Path(tmp) / "install"), PATH=f"{shim_dir}:{os.environ['PATH']}",
                   USE_CASES="reasoning:1000/1000 chat:128/128 summarization:8000/512 generation:512/8000",
                   MAX_BATCH_SIZE="16,32,48,64,96,128,256,384", MAX_NUM_TOKENS="9000", SBATCH_ACCOUNT="llmb",
                   CONTAINER_RUNTIME="none", SBATCH_GPUS_PER_NODE="4")
        argv = ["llmb-run", "single", "-w", "inference_deepseek-r1", "-s", "671b", "--dtype", "nvfp4", "--scale",
                "4", "--json", "--no-preflight"]  # no weights here: submission alone is measured
        start = time.perf_counter()
        done = subprocess.run(argv, env=env, capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            print(done.stderr)
            return 1
        jobs = json.loads(done.stdout)["jobs"]
        n_calls = len(calls.read_text().splitlines()) if calls.exists() else 0
        arrays = sorted({j["job_id"].split("_")[0] for j in jobs})
        subprocess.run(["scancel", *arrays], env=env, check=False)
    print(f"{'jobs submitted':<28}{len(jobs):>8}")
    print(f"{'sbatch calls':<28}{n_calls:>8}   (target 1)")
    print(f"{'wall time of llmb-run (s)':<28}{elapsed:>8.2f}   (target < 2.00)")
    print(f"{'time per job (ms)':<28}{elapsed / max(1, len(jobs)) * 1000:>8.1f}")
    ok = n_calls == 1 and elapsed < 2.0 and len(jobs) == 32
    print("result:", "OK" if ok else "MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
