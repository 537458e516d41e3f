#!/usr/bin/env python3
"""Time `llmb-run single ... --dry-run` against NVIDIA's llmb-run 1.2 on the same command (target: no slower).

Both run as whole commands with the same interpreter (interpreter start, `site`, imports, YAML, plan, printing),
alternately, so that load from other processes hits both alike; medians and minimums are printed. NVIDIA's wheel
(../shared/vendor/nvidia-llmb/llmb_run-1.2.0) is installed into a scratch venv on first use (with
--system-site-packages: the same `site` start-up cost as ours; `rich` comes from the package index); its workload
comes from NVIDIA's 25.07 DeepSeek-R1 metadata.yaml in a scratch llmb_repo.

Usage: python bench/bench_dry_run.py [--runs 21] [--venv DIR] [--wheel WHL] [--metadata metadata.yaml]
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

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
for candidate in (ROOT / "shared", Path("/work/shared")):
    if candidate.is_dir():
        SHARED = candidate
        break
COMMAND = ["single", "-w", "inference_deepseek-r1", "-s", "671b", "--dtype", "nvfp4", "--scale", "4"]


def nvidia_venv(venv: Path, wheel: Path) -> Path:
    python = venv / "bin" / "python"
    if not (venv / "bin" / "llmb-run").exists():
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", str(wheel)], check=True)
    return python


def install_dir(root: Path, metadata: Path) -> Path:
    """An LLMB_INSTALL both tools accept: cluster_config.yaml plus NVIDIA's metadata.yaml as its llmb_repo."""
    repo = root / "repo" / "deepseek-r1"
    repo.mkdir(parents=True)
    (repo / "metadata.yaml").write_text(metadata.read_text())
    (root / "cluster_config.yaml").write_text(
        f"launcher:\n  gpu_type: gb200\n  llmb_install: {root}\n  llmb_repo: {root / 'repo'}\n"
        "slurm:\n  account: llmb\n  gpu_partition: batch\nworkloads:\n  installed: [inference_deepseek-r1]\n")
    return root


def once(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, check=True, capture_output=True, text=True)
    return time.perf_counter() - start, done.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--venv", type=Path, default=Path(tempfile.gettempdir()) / "bench-llmb-run-1.2-venv")
    parser.add_argument("--wheel", type=Path, default=SHARED / "vendor/nvidia-llmb/llmb_run-1.2.0-py3-none-any.whl")
    parser.add_argument("--metadata", type=Path,
                        default=SHARED / "reference/nvidia-recipes/dsr1-25.07/metadata.yaml")
    args = parser.parse_args()
    nvidia_python = nvidia_venv(args.venv, args.wheel)
    with tempfile.TemporaryDirectory() as tmp:
        root = install_dir(Path(tmp), args.metadata)
        # As installed code runs: with bytecode caches (pip compiles NVIDIA's wheel at install; a shell with
        # PYTHONDONTWRITEBYTECODE would make ours recompile every module on every run).
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env.update(LLMB_INSTALL=str(root), PYTHONPATH=str(ROOT))
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "NVIDIA llmb-run 1.2 single -d": [str(nvidia_python), str(args.venv / "bin" / "llmb-run"), *COMMAND, "-d"],
            "llmb-run single --dry-run": [sys.executable, "-m", "llmb_plugin_deepseek_r1.host.cli", *COMMAND,
                                          "--dry-run"],
            "llmb-run single --dry-run --json": [sys.executable, "-m", "llmb_plugin_deepseek_r1.host.cli", *COMMAND,
                                                 "--dry-run", "--json"],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        lines: dict[str, int] = {}
        for argv in commands.values():  # warm-up: bytecode caches written, files in the page cache
            once(argv, env, root)
        for _ in range(args.runs):  # interleaved: a burst of load elsewhere hits every command alike
            for name, argv in commands.items():
                seconds, out = once(argv, env, root)
                times[name].append(seconds)
                lines[name] = len(out.splitlines())
    nvidia = statistics.median(times["NVIDIA llmb-run 1.2 single -d"])
    print(f"{'command':<36}{'median s':>10}{'min s':>8}{'lines out':>11}{'vs NVIDIA 1.2':>15}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<36}{median:>10.3f}{min(values):>8.3f}{lines[name]:>11}{median / nvidia:>14.2f}x")
    ours = statistics.median(times["llmb-run single --dry-run"])
    ok = ours <= nvidia
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"target: dry run no slower than NVIDIA's llmb-run 1.2 -> {'met' if ok else 'MISSED'} "
          f"({ours:.3f} s vs {nvidia:.3f} s; NVIDIA's prints one task line, ours the full plan)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
