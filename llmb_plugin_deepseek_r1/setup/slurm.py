"""``--slurm``: the heavy setup steps (weights, image, datasets) as one Slurm job on the CPU partition.

Why: users asked not to download 395 GiB, import a container and write datasets on the login node. The job
runs the same step functions; it is submitted, recorded and tracked by the host's own submission and tracking
code (so ``llmb-run jobs list`` shows it), and its summary comes back as the submitit result. ``--wait`` waits
with the host's deadline-bound wait, so a job that dies without a result is reported, never waited on forever.
"""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from llmb_plugin_deepseek_r1.host import records, submit, tracking
from llmb_plugin_deepseek_r1.host.contract import JobPlan, SlurmParams
from llmb_plugin_deepseek_r1.host.errors import LlmbError
from llmb_plugin_deepseek_r1.job.entry import sigterm_raises
from llmb_plugin_deepseek_r1.tuning import keep_freed_memory
from .model import HEAVY_STEPS, SetupOptions, StepResult, format_summary, summary_dict
from .runner import run_steps, stderr_log

RESULT_GRACE_S = 10.0


def job_name(opts: SetupOptions) -> str:
    return f"{opts.workload}_setup"


def sbatch_environment(env: Mapping[str, str]) -> dict[str, str]:
    """What sbatch (and so the job) sees: this setup's environment without SBATCH_* input variables, which
    would override the job's own #SBATCH lines (SBATCH_PARTITION is usually the GPU partition)."""
    return {k: v for k, v in env.items() if not k.startswith("SBATCH_")}


def heavy_of(opts: SetupOptions) -> tuple[str, ...]:
    return tuple(s for s in opts.steps if s in HEAVY_STEPS)


def setup_plan(opts: SetupOptions, env: Mapping[str, str]) -> JobPlan:
    """The setup job as the host submits any job: one task on one CPU node, the body run once (no srun)."""
    assert opts.slurm is not None
    params = SlurmParams(job_name=job_name(opts), nodes=1, ntasks_per_node=1, time_min=opts.slurm.time_min,
                         partition=opts.slurm.partition, account=opts.slurm.account, exclusive=False,
                         additional={"cpus_per_task": str(opts.slurm.cpus)})
    return JobPlan(name=job_name(opts), slurm=params, container={}, use_cases=[], env=sbatch_environment(env),
                   body=run_heavy_steps, body_args=(replace(opts, steps=heavy_of(opts), slurm=None),))


def slurm_parameters(opts: SetupOptions) -> dict[str, Any]:
    """The submitit parameters the setup job is submitted with (shown by ``--dry-run``)."""
    return submit.slurm_parameters([setup_plan(opts, {})])


def run_heavy_steps(opts: SetupOptions) -> dict[str, Any]:
    """The job body (module-level, so submitit can pickle it): the steps in ``opts.steps``, run here with the
    job's environment (sbatch exported the submitter's, HF_TOKEN included, without writing it to disk)."""
    keep_freed_memory()

    env = dict(os.environ)
    job_id = env.get("SLURM_JOB_ID", f"local{os.getpid()}")
    records.write_status(opts.workload_dir, job_id, "RUNNING", kind="setup", steps=list(opts.steps))
    with sigterm_raises(KeyboardInterrupt):
        results = run_steps(opts, env, stderr_log)
    doc = summary_dict(opts, results, [], {"slurm_job_id": env.get("SLURM_JOB_ID")})
    records.write_status(opts.workload_dir, job_id, "COMPLETED" if doc["ok"] else "FAILED", kind="setup",
                         steps=[r.to_dict() for r in results])
    print(format_summary(doc), flush=True)
    return doc


def submit_heavy(opts: SetupOptions, env: Mapping[str, str], log: Callable[[str], None]) -> tuple[list[StepResult],
                                                                                                dict[str, Any]]:
    """Submit the heavy steps as one job; with ``wait``, wait for it and return its steps' results."""
    assert opts.slurm is not None
    steps = heavy_of(opts)
    t0 = time.monotonic()
    try:
        [job], _ = submit.submit_jobs([setup_plan(opts, env)], opts.workload_dir, "slurm")
    except LlmbError as exc:
        return [StepResult(s, "failed", f"could not submit the setup job: {exc}",
                           remedy=["check --partition/--account (or slurm.cpu_partition/account in "
                                   "cluster_config.yaml), or run without --slurm"]) for s in steps], {}
    submit.record_jobs(opts.workload_dir, [job], {
        "workload": opts.workload, "command_line": shlex.join(["llmb-run", "setup", "-w", opts.workload, "--",
                                                               "--slurm", "--steps", ",".join(steps)])})
    stdout, stderr = job.folder / f"{job.job_id}_0_log.out", job.folder / f"{job.job_id}_0_log.err"
    info = {"slurm_job_id": job.job_id, "partition": opts.slurm.partition, "log": str(stderr), "stdout": str(stdout)}
    log(f"submitted Slurm job {job.job_id} on partition {opts.slurm.partition} (time limit {opts.slurm.time_min} "
        f"min) for: {', '.join(steps)}")
    log(f"follow it with: tail -f {stderr}   (state: llmb-run jobs show {job.job_id})")
    if not opts.slurm.wait:
        return [StepResult(s, "submitted", f"in Slurm job {job.job_id} (log: {stderr})",
                           seconds=time.monotonic() - t0) for s in steps], {"slurm": info}
    results = wait_for_job(opts, job.job_id, steps, opts.slurm.wait_timeout_s, log)
    for result in results:
        result.detail = f"[Slurm job {job.job_id}] {result.detail}"
    return results, {"slurm": info}


def wait_for_job(opts: SetupOptions, job_id: str, steps: tuple[str, ...], timeout_s: float,
                 log: Callable[[str], None]) -> list[StepResult]:
    """Wait with the host's tracking (sacct -> squeue -> status file) until the job ends or the deadline."""
    record = tracking.find_record(opts.install_dir, job_id)
    try:
        state = tracking.wait_for(opts.install_dir, record, timeout_s)
    except LlmbError as exc:
        return [StepResult(s, "incomplete", f"{exc}", remedy=[f"follow it: llmb-run jobs show {job_id}; rerun "
                                                              "setup later (finished steps are skipped)"])
                for s in steps]
    log(f"Slurm job {job_id}: {state}")
    deadline = time.monotonic() + RESULT_GRACE_S  # submitit writes the result just before the job ends
    while (result := tracking.submitit_result(record)) is None and time.monotonic() < deadline:
        time.sleep(0.2)
    if result is None:
        return [StepResult(s, "failed", f"Slurm job {job_id} ended ({state}) without a result; see "
                           f"{record['submitit_folder']}") for s in steps]
    outcome, value = result
    if outcome != "success":
        last = str(value).strip().splitlines()[-1] if str(value).strip() else "no traceback"
        return [StepResult(s, "failed", f"Slurm job {job_id} raised: {last}") for s in steps]
    return [StepResult.from_dict(d) for d in value["steps"]]
