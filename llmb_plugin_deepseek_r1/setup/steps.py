"""Installer-driven setup (``setup.sh``, ``llmb-run setup -w inference_deepseek-r1``, ``python -m
llmb_plugin_deepseek_r1 setup``): layout, weights, container image, datasets, then a summary.

Every step checks before it works and skips what is already verified, writes through temporary names and
keeps what an interrupted run finished, so setup can be killed and re-run at any point. Exit codes: 0 all
done or skipped, 1 a validation or configuration error, 4 a step failed or is incomplete (the table in
README's "Exit codes").
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from llmb_plugin_deepseek_r1.host import errors
from llmb_plugin_deepseek_r1.host.contract import HostContext
from .model import HEAVY_STEPS, STEPS, SetupOptions, StepResult, format_summary, summary_dict
from .options import DEFAULT_LOCK_TIMEOUT_S, DEFAULT_TIME, DEFAULT_WORKERS, resolve_options
from .runner import run_steps, stderr_log

__all__ = ["build_parser", "main", "run_setup"]

DESCRIPTION = """\
Prepare everything a DeepSeek-R1 benchmark needs under $LLMB_INSTALL: the layout (images/, datasets/, venvs/,
workloads/ and $LLMB_WORKLOAD), the weights (nvidia/DeepSeek-R1-FP4 with a manifest for the full weight check),
the container image (enroot import to images/*.sqsh) and one dataset per use case. Finished, verified work is
skipped, so it is safe to interrupt and re-run. Also: llmb-run setup -w inference_deepseek-r1 -- [OPTIONS].
"""

EPILOG = """\
environment:
  LLMB_INSTALL      top-level install directory (required; STAGE_PATH is no longer used)
  MANUAL_INSTALL    true (default) when you run setup by hand: it then warns when no virtual environment is
                    active (jobs reuse the installer's venv); the installer sets it to false
  HF_TOKEN          Hugging Face token for the download (never printed or written to disk by setup)
  HF_REVISION       revision to pin (same as --revision)
  HF_HUB_OFFLINE=1  take the weights from the local Hugging Face cache (HF_HOME / HF_HUB_CACHE) instead
  USE_CASES         which datasets to make (default: every use case), e.g. "reasoning:1000/1000 chat:128/128"
  PROMPT_REQUESTS   requests per dataset (also the recipe's PROMT_REQUESTS, then NUM_REQUESTS; default: the
                    use case's num_requests)
  RUN_CONF_IMAGE    image URI to import when --image is not given (a .sqsh path is used by jobs as is)
  MODEL_PATH        weights folder when not $LLMB_WORKLOAD/DeepSeek-R1-FP4
exit codes: 0 everything done or skipped, 1 bad option value or configuration, 2 usage error, 3 system error,
  4 a step failed or is incomplete, 130 interrupted
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="setup.sh", description=DESCRIPTION, epilog=EPILOG,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", default=",".join(STEPS), metavar="LIST",
                   help=f"comma-separated steps to run, in this order: {','.join(STEPS)} (default: all)")
    p.add_argument("--dry-run", action="store_true", help="print what would be done; change nothing")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument("--revision", metavar="REV", help="pin the weights to this branch, tag or commit "
                   "(default: $HF_REVISION, else main)")
    p.add_argument("--workers", type=int, default=DEFAULT_WORKERS, metavar="N",
                   help=f"parallel downloads (default: {DEFAULT_WORKERS})")
    p.add_argument("--image", metavar="URI", help="container image to import (default: $RUN_CONF_IMAGE when it "
                   "is an image URI, else the recipe's nvcr.io#nvidia/tensorrt-llm/release:1.0.0rc1)")
    p.add_argument("--arch", metavar="ARCH", help="image architecture: aarch64 or x86_64 (default: aarch64 for "
                   "gb200, else this machine's)")
    p.add_argument("--lock-timeout", type=float, default=DEFAULT_LOCK_TIMEOUT_S, metavar="SECONDS",
                   help="how long to wait for another setup working on the same image or weights "
                        f"(default: {DEFAULT_LOCK_TIMEOUT_S:.0f})")
    slurm = p.add_argument_group("running the heavy steps (weights, image, datasets) as a Slurm job")
    slurm.add_argument("--slurm", action="store_true", help="submit them as one job on the CPU partition "
                       "instead of running them here (the login node)")
    slurm.add_argument("--partition", help="CPU partition (default: slurm.cpu_partition of cluster_config.yaml)")
    slurm.add_argument("--account", help="Slurm account (default: $SBATCH_ACCOUNT or slurm.account)")
    slurm.add_argument("--time", metavar="LIMIT", help=f"job time limit in Slurm's format (default: {DEFAULT_TIME})")
    slurm.add_argument("--cpus", type=int, default=8, metavar="N", help="CPUs for the job (default: 8)")
    slurm.add_argument("--wait", action="store_true", help="wait for the job and report its summary")
    slurm.add_argument("--wait-timeout", type=float, metavar="SECONDS",
                       help="give up waiting after this long (default: the time limit plus 10 minutes)")
    return p


def run_setup(opts: SetupOptions, env: Mapping[str, str],
              log: Callable[[str], None]) -> tuple[list[StepResult], dict[str, Any]]:
    """All of ``opts.steps``: here, or the heavy ones as a Slurm job (``opts.slurm``)."""
    if opts.slurm is None:
        return run_steps(opts, env, log), {}
    local = tuple(s for s in opts.steps if s not in HEAVY_STEPS)
    heavy = tuple(s for s in opts.steps if s in HEAVY_STEPS)
    results = run_steps(opts, env, log, local)
    if not heavy:
        return results, {}
    if not all(r.ok for r in results):
        return results + [StepResult(s, "incomplete", "not submitted: the layout step failed") for s in heavy], {}
    if opts.dry_run:
        from .slurm import slurm_parameters

        planned = run_steps(opts, env, log, heavy)
        params = slurm_parameters(opts)
        for r in planned:
            r.detail = f"[in a Slurm job on partition {params['partition']}] {r.detail}"
        return results + planned, {"slurm": {"would_submit": params}}
    from .slurm import submit_heavy

    submitted, extra = submit_heavy(opts, env, log)
    return results + submitted, extra


@errors.command
def main(argv: list[str] | None = None, *, context: HostContext | None = None) -> int:
    """Parse options, resolve the context (``context`` from llmb-run, else the environment), run, summarise."""
    from llmb_plugin_deepseek_r1.job.entry import sigterm_raises

    args = build_parser().parse_args(argv)
    if context is None:
        from llmb_plugin_deepseek_r1.host.cluster import resolve_context

        context = resolve_context(os.environ, Path.cwd())
    from llmb_plugin_deepseek_r1.recipe import load_metadata

    opts = resolve_options(args, context, load_metadata())
    env = dict(context.env)
    from .data import venv_warning

    warnings = [w for w in (venv_warning(env, opts.manual_install),) if w]
    for warning in warnings:
        stderr_log(f"warning: {warning}")
    from llmb_plugin_deepseek_r1.tuning import keep_freed_memory

    keep_freed_memory()  # the datasets step's numpy temporaries (process-wide, so here at the entry point)
    with sigterm_raises(KeyboardInterrupt):  # SIGTERM unwinds like Ctrl-C, so temporary files are removed
        try:
            results, extra = run_setup(opts, env, stderr_log)
        except KeyboardInterrupt:
            results, extra = [StepResult("setup", "interrupted", "interrupted; rerun to resume")], {}
    doc = summary_dict(opts, results, warnings, extra)
    print(json.dumps(doc, indent=2) if args.json else format_summary(doc), flush=True)
    return int(doc["exit_code"])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
