"""Installer-driven setup (``setup.sh``, ``llmb-run setup -w inference_deepseek-r1``, ``python -m
llmb_plugin_deepseek_r1 setup``): layout, weights, container image, datasets, then a summary.

Every step checks before it works and skips what is already verified, writes through temporary names and
keeps what an interrupted run finished, so setup can be killed and re-run at any point. Exit codes: 0 all
done or skipped, 1 a validation or configuration error, 2 a step failed or is incomplete.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from llmb_plugin_deepseek_r1.host.errors import ConfigError, ValidationError
from .model import (EXIT_CONFIG, HEAVY_STEPS, STEPS, SetupOptions, StepResult, format_summary,
                          summary_dict)
from .options import DEFAULT_LOCK_TIMEOUT_S, DEFAULT_TIME, DEFAULT_WORKERS, resolve_options

__all__ = ["build_parser", "main", "run_steps", "run_setup", "stderr_log"]

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
exit codes: 0 everything done or skipped, 1 bad option or configuration, 2 a step failed or is incomplete
"""


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad option is a configuration error (exit 1) with one line, as elsewhere in llmb-run."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_CONFIG, f"error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="setup.sh", description=DESCRIPTION, epilog=EPILOG,
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


def stderr_log(message: str) -> None:
    """Progress lines go to stderr, so that stdout carries only the summary (``--json`` stays parseable)."""
    print(f"[setup] {message}", file=sys.stderr, flush=True)


def _step_functions() -> dict[str, Callable[[SetupOptions, Mapping[str, str], Callable[[str], None]], StepResult]]:
    from .data import datasets_step, layout_step
    from .image import image_step
    from .download import weights_step

    return {"layout": layout_step, "weights": weights_step, "image": image_step, "datasets": datasets_step}


def run_steps(opts: SetupOptions, env: Mapping[str, str], log: Callable[[str], None],
              steps: tuple[str, ...] | None = None) -> list[StepResult]:
    """Run ``steps`` (default ``opts.steps``) here, in order. A failed layout or an interruption marks the
    remaining steps incomplete; any other failure does not stop the independent steps after it."""
    functions = _step_functions()
    todo = list(steps if steps is not None else opts.steps)
    results: list[StepResult] = []
    while todo:
        step = todo.pop(0)
        log(f"{step}: {'checking (dry run)' if opts.dry_run else 'starting'}")
        try:
            result = functions[step](opts, env, log)
        except KeyboardInterrupt:
            results.append(StepResult(step, "interrupted", "interrupted; finished work is kept, rerun to resume"))
            results += [StepResult(s, "incomplete", "not run: setup was interrupted") for s in todo]
            break
        except Exception as exc:  # noqa: BLE001 - one broken step must not hide the others' outcome
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            result = StepResult(step, "failed", f"unexpected {type(exc).__name__}: {text}",
                                remedy=["rerun; if it persists, report it with the lines above"])
        results.append(result)
        log(f"{step}: {result.status}: {result.detail}")
        if step == "layout" and not result.ok:
            results += [StepResult(s, "incomplete", "not run: the layout step failed") for s in todo]
            break
    return results


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


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (Slurm's scancel, a killed installer) unwinds like Ctrl-C, so temporary files are removed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None, *, context: Any = None) -> int:
    """Parse options, resolve the context (``context`` from llmb-run, else the environment), run, summarise."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a bad option (1): argparse already printed why
        return int(exc.code or 0)
    try:
        if context is None:
            from llmb_plugin_deepseek_r1.host.cluster import resolve_context

            context = resolve_context(os.environ, Path.cwd())
        from llmb_plugin_deepseek_r1.recipe import load_metadata

        opts = resolve_options(args, context, load_metadata())
    except (ConfigError, ValidationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    env = dict(context.env)
    from .data import venv_warning

    warnings = [w for w in (venv_warning(env, opts.manual_install),) if w]
    for warning in warnings:
        stderr_log(f"warning: {warning}")
    with _terminate_as_interrupt():
        try:
            results, extra = run_setup(opts, env, stderr_log)
        except KeyboardInterrupt:
            results, extra = [StepResult("setup", "interrupted", "interrupted; rerun to resume")], {}
    doc = summary_dict(opts, results, warnings, extra)
    print(json.dumps(doc, indent=2) if args.json else format_summary(doc), flush=True)
    return int(doc["exit_code"])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
