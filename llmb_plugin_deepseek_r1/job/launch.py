"""`python -m llmb_plugin_deepseek_r1 launch`: the job body for `sbatch launch.sh` (the seed's Direct Method).

Reads the same environment as llmb-run (LLMB_INSTALL, USE_CASES and the other knobs, MODEL_SIZE, DTYPE,
JOB_TOTAL_GPUS, GPU_TYPE) and runs every use case in this allocation.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from llmb_plugin_deepseek_r1 import WORKLOAD_KEY
from llmb_plugin_deepseek_r1.host import errors
from llmb_plugin_deepseek_r1.host.contract import RunRequest


def request_from_environment(environ: dict[str, str], cwd: Path, *, model_size: str, dtype: str,
                             scale: int) -> RunRequest:
    from llmb_plugin_deepseek_r1.host.cluster import resolve_context
    from llmb_plugin_deepseek_r1.host.validate import validate_request
    from llmb_plugin_deepseek_r1.recipe import load_metadata

    # Variables a launcher named as explicit overrides (NVIDIA's LLMB_CONTAINER_ENV: its --env keys) keep their
    # value over cluster_config.yaml, as they did at submission.
    explicit = {k: environ[k] for k in (environ.get("LLMB_CONTAINER_ENV") or "").split(",") if k in environ}
    context = resolve_context(environ, cwd, explicit, workload=WORKLOAD_KEY)
    validate_request(load_metadata(), WORKLOAD_KEY, context.gpu_type, model_size, dtype, scale)
    return RunRequest(workload=WORKLOAD_KEY, model_size=model_size.lower(), dtype=dtype.lower(), scale=scale,
                      gpu_type=context.gpu_type, install_dir=context.install_dir, env=context.env,
                      one_allocation=True)


def _scale_default(environ: dict[str, str]) -> int:
    for var in ("JOB_TOTAL_GPUS", "SLURM_NTASKS"):
        if environ.get(var, "").isdigit():
            return int(environ[var])
    return 4


@errors.command
def main(argv: list[str] | None = None) -> int:
    """0 when every use case is VALID, 4 when one FAILED, 143 when the job was terminated (SIGTERM)."""
    environ = dict(os.environ)
    parser = argparse.ArgumentParser(prog="python -m llmb_plugin_deepseek_r1 launch", description=__doc__)
    parser.add_argument("--model-size", default=environ.get("MODEL_SIZE", "671b"))
    parser.add_argument("--dtype", default=environ.get("DTYPE", "nvfp4"))
    parser.add_argument("--scale", type=int, default=_scale_default(environ))
    parser.add_argument("--dry-run", action="store_true", help="print the plan and exit")
    args = parser.parse_args(argv)
    from llmb_plugin_deepseek_r1.planning.spec import resolve_run_specs
    from llmb_plugin_deepseek_r1.recipe import load_metadata
    from .benchmark import JobTerminated
    from .entry import run_job_body
    from .run import JobFailed

    request = request_from_environment(environ, Path.cwd(), model_size=args.model_size, dtype=args.dtype,
                                       scale=args.scale)
    specs = resolve_run_specs(request, load_metadata())
    if args.dry_run:
        from llmb_plugin_deepseek_r1.host.render import plans_text
        from llmb_plugin_deepseek_r1.planning.plan import build_job_plans

        print(plans_text(request, build_job_plans(specs, request)))
        return 0
    try:
        run_job_body(tuple(specs), environ)
    except JobFailed as exc:
        raise errors.BenchmarkFailed(f"the job failed in {exc}") from None
    except JobTerminated:
        return 143  # 128 + SIGTERM, as a shell reports it
    return 0
