"""``--slurm``: the heavy setup steps (weights, image, datasets) as one Slurm job on the CPU partition.

Why: users asked not to download 395 GiB, import a container and write datasets on the login node. The job
runs the same step functions; its summary comes back as the submitit result. ``--wait`` polls the result file
and Slurm's own view (squeue, then sacct) with a deadline, so a job that dies without a result is reported
instead of waited on forever.
"""

from __future__ import annotations

import os
import pickle
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from .model import HEAVY_STEPS, SetupOptions, StepResult, format_summary, summary_dict

JOBS_DIR = "setup_jobs"
POLL_S = 1.0
RESULT_GRACE_S = 10.0


def job_name(opts: SetupOptions) -> str:
    return f"{opts.workload}_setup"


def slurm_parameters(opts: SetupOptions) -> dict[str, Any]:
    """submitit SlurmExecutor parameters: one task on one CPU node, the body run once (no srun)."""
    assert opts.slurm is not None
    params: dict[str, Any] = {
        "job_name": job_name(opts),
        "partition": opts.slurm.partition,
        "time": opts.slurm.time_min,
        "nodes": 1,
        "ntasks_per_node": 1,
        "cpus_per_task": opts.slurm.cpus,
        "use_srun": False,
    }
    if opts.slurm.account:
        params["account"] = opts.slurm.account
    return params


def sbatch_environment(env: Mapping[str, str]) -> dict[str, str]:
    """What sbatch (and so the job) sees: this setup's environment without SBATCH_* input variables, which
    would override the job's own #SBATCH lines (SBATCH_PARTITION is usually the GPU partition)."""
    return {k: v for k, v in env.items() if not k.startswith("SBATCH_")}


def run_heavy_steps(opts: SetupOptions) -> dict[str, Any]:
    """The job body (module-level, so submitit can pickle it): the steps in ``opts.steps``, run here with the
    job's environment (sbatch exported the submitter's, HF_TOKEN included, without writing it to disk)."""
    from .steps import run_steps, stderr_log

    env = dict(os.environ)
    results = run_steps(opts, env, stderr_log)
    doc = summary_dict(opts, results, [], {"slurm_job_id": env.get("SLURM_JOB_ID")})
    print(format_summary(doc), flush=True)
    return doc


def heavy_of(opts: SetupOptions) -> tuple[str, ...]:
    return tuple(s for s in opts.steps if s in HEAVY_STEPS)


def submit_heavy(opts: SetupOptions, env: Mapping[str, str], log: Callable[[str], None]) -> tuple[list[StepResult],
                                                                                                dict[str, Any]]:
    """Submit the heavy steps as one job; with ``wait``, wait for it and return its steps' results."""
    import submitit

    assert opts.slurm is not None
    steps = heavy_of(opts)
    folder = opts.workload_dir / JOBS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    from llmb_plugin_deepseek_r1.host.safety import interpreter

    executor = submitit.SlurmExecutor(folder=folder / "%j", python=interpreter(sys.executable))
    executor.update_parameters(**slurm_parameters(opts))
    job_opts = replace(opts, steps=steps, slurm=None)
    t0 = time.monotonic()
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(sbatch_environment(env))
        job = executor.submit(run_heavy_steps, job_opts)
    except Exception as exc:  # noqa: BLE001 - sbatch refusals come back as one line
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        return [StepResult(s, "failed", f"could not submit the setup job: {reason}",
                           remedy=["check --partition/--account (or slurm.cpu_partition/account in "
                                   "cluster_config.yaml), or run without --slurm"]) for s in steps], {}
    finally:
        os.environ.clear()
        os.environ.update(saved)
    job_id = str(job.job_id)
    info = {"slurm_job_id": job_id, "partition": opts.slurm.partition, "log": str(job.paths.stderr),
            "stdout": str(job.paths.stdout)}
    log(f"submitted Slurm job {job_id} on partition {opts.slurm.partition} (time limit {opts.slurm.time_min} min) "
        f"for: {', '.join(steps)}")
    log(f"follow it with: tail -f {job.paths.stderr}   (state: squeue -j {job_id}; sacct -j {job_id})")
    if not opts.slurm.wait:
        return [StepResult(s, "submitted", f"in Slurm job {job_id} (log: {job.paths.stderr})",
                           seconds=time.monotonic() - t0) for s in steps], {"slurm": info}
    results = wait_for_job(job_id, job.paths.result_pickle, steps, opts.slurm.wait_timeout_s, log)
    for result in results:
        result.detail = f"[Slurm job {job_id}] {result.detail}"
    return results, {"slurm": info}


def _slurm_state(job_id: str) -> str | None:
    from llmb_plugin_deepseek_r1.host.tracking import sacct_state, squeue_state

    return squeue_state(job_id) or sacct_state(job_id)


def _read_result(path: Path, job_id: str, steps: tuple[str, ...]) -> list[StepResult]:
    with open(path, "rb") as handle:
        outcome, value = pickle.load(handle)
    if outcome != "success":
        last = str(value).strip().splitlines()[-1] if str(value).strip() else "no traceback"
        return [StepResult(s, "failed", f"Slurm job {job_id} raised: {last}") for s in steps]
    return [StepResult.from_dict(d) for d in value["steps"]]


def wait_for_job(job_id: str, result_file: Path, steps: tuple[str, ...], timeout_s: float,
                 log: Callable[[str], None]) -> list[StepResult]:
    """Poll until the job's result exists, it ends without one, or the deadline passes."""
    from llmb_plugin_deepseek_r1.host.tracking import TERMINAL

    deadline = time.monotonic() + timeout_s
    gone_since: float | None = None
    last_state = "?"
    while True:
        if result_file.exists():
            try:
                return _read_result(result_file, job_id, steps)
            except (EOFError, pickle.UnpicklingError):
                pass  # still being written
        state = _slurm_state(job_id)
        if state != last_state:
            log(f"Slurm job {job_id}: {state or 'not in squeue/sacct'}")
            last_state = state
        now = time.monotonic()
        if state is None or state in TERMINAL:
            gone_since = gone_since or now
            if now - gone_since > RESULT_GRACE_S:  # its result file would be there by now
                return [StepResult(s, "failed", f"Slurm job {job_id} ended ({state or 'state unknown'}) without a "
                                   f"result; see {result_file.parent}") for s in steps]
        else:
            gone_since = None
        if now >= deadline:
            return [StepResult(s, "incomplete", f"Slurm job {job_id} still {state or 'unknown'} after waiting "
                               f"{timeout_s:.0f} s", remedy=[f"follow it: squeue -j {job_id}; rerun setup later "
                                                            "(finished steps are skipped)"]) for s in steps]
        time.sleep(POLL_S)
