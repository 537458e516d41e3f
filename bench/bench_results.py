#!/usr/bin/env python3
"""Time `llmb-run results --json` over 1,000 and 10,000 result files (target: < 1 s at 10,000, linear growth).

Real result documents: the job body runs once with the STAND-IN trtllm-bench (tests/fake_trtllm) to write one;
the bench then copies it under new job ids, concurrencies and finish times (100 runs per experiment folder, as
repeated sweeps leave them; 64 distinct settings, so repeats are aggregated as by default). Each size is timed as
the whole command, several times; the median is printed, which is a run with the record cache warm (the first
run of each size builds it and is printed too).

Usage: python bench/bench_results.py [--sizes 1000,10000] [--runs 5]
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

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 1.0


def template_documents(install: Path) -> list[tuple[Path, dict]]:
    """Result documents written by the real job body (stand-in trtllm-bench), one per use case."""
    sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]
    from jobkit import job_environ, load, result_files, specs_for  # noqa: E402 - the tests' job kit

    from llmb_plugin_deepseek_r1.job.run import run_job

    environ = job_environ(install, LLMB_JOB_ID="100")
    run_job(specs_for(environ), environ)
    return [(path, load(path)) for path in result_files(install)]


def time_results(install: Path, runs: int) -> tuple[float, int]:
    # the record cache goes beside the install, never into the user's ~/.cache
    times, out = time_llmb_run(["results", "--json"], install, runs,
                               LLMB_RESULTS_CACHE=str(install.parent / "results-cache"))
    rows = len(json.loads(out))
    print(f"  {sum(1 for _ in install.glob('workloads/*/experiments/*/*_streaming-*.json'))} files: runs "
          f"{', '.join(f'{t:.3f}' for t in times)} s (the first builds the record cache)")
    return statistics.median(times), rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="build the files in this folder and keep them")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        install = (args.keep or Path(tmp)) / "install"
        templates = template_documents(install)
        for path, _ in templates:
            path.unlink()
        done = 0
        for size in sorted(sizes):
            populate_range(install, templates, done, size)  # grow the same install: files 0..size-1
            done = size
            seconds, rows = time_results(install, args.runs)
            results.append((size, seconds, rows))
    print(f"{'result files':>12}{'median s':>10}{'rows':>8}{'us/file':>10}")
    for size, seconds, rows in results:
        print(f"{size:>12}{seconds:>10.3f}{rows:>8}{seconds / size * 1e6:>10.1f}")
    (small, t_small, _), (big, t_big, _) = results[0], results[-1]
    print(f"growth: {big / small:.0f}x the files took {t_big / t_small:.1f}x the time (linear or better when <= "
          f"{big / small:.0f}x)")
    ok = t_big < TARGET_S
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores (timings grow with it)")
    print(f"target: results --json over {big} files < {TARGET_S:.1f} s -> {'met' if ok else 'MISSED'} "
          f"({t_big:.3f} s)")
    return 0 if ok else 1


def populate_range(install: Path, templates: list[tuple[Path, dict]], start: int, stop: int) -> None:
    experiments = templates[0][0].parent.parent
    for index in range(start, stop):
        source, doc = templates[index % len(templates)]
        folder = experiments / f"{source.parent.name}_sweep{index // 100:04d}"
        folder.mkdir(exist_ok=True)
        job = f"{1000 + index}"
        copy = json.loads(json.dumps(doc))
        copy["job_id"] = copy["provenance"]["job_id"] = job
        copy["asked"]["concurrency"] = 1 + index % 64
        copy["provenance"]["finished"] += index
        stem = source.name.rsplit("_", 1)[0]
        (folder / f"{stem}_{job}.json").write_text(json.dumps(copy, indent=2))


if __name__ == "__main__":
    sys.exit(main())
