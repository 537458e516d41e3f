"""Submission through submitit: Slurm when sbatch is reachable, else this machine; job arrays; records.

Jobs whose Slurm parameters match apart from time limit and name go in one job array (one sbatch call); the
array is submitted with the longest limit and each task is then given its own limit and name with
`scontrol update` (lowering a limit is always allowed; one call per distinct limit and name, over task ranges),
so Slurm enforces every use case's own time limit.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from llmb_plugin_deepseek_r1.host import records
from . import slurm
from .contract import JobPlan, RunRequest
from . import local_jobs, safety
from .errors import HostError, LlmbError, SlurmError, ValidationError

EXECUTORS = ("slurm", "local")


def choose_executor(requested: str | None, env: Mapping[str, str]) -> str:
    """Slurm when sbatch is reachable, else local; --executor or LLMB_EXECUTOR forces either."""
    choice = (requested or env.get("LLMB_EXECUTOR") or "auto").lower()
    if choice == "auto":
        return "slurm" if slurm.available(env) else "local"
    if choice not in EXECUTORS:
        raise ValidationError(f"LLMB_EXECUTOR={choice!r} is not valid: expected auto, slurm or local")
    if choice == "slurm" and not slurm.available(env):
        raise HostError("the Slurm executor was asked for but sbatch is not on PATH")
    return choice


def refuse_nested(env: Mapping[str, str], allow: bool) -> None:
    if env.get("SLURM_JOB_ID") and not allow:
        raise ValidationError(f"refusing to submit from inside a Slurm allocation (SLURM_JOB_ID="
                              f"{env['SLURM_JOB_ID']}): run from a login node, or pass --allow-nested")


def _array_key(plan: JobPlan) -> tuple[Any, ...]:
    s = plan.slurm
    return (s.nodes, s.ntasks_per_node, s.partition, s.account, s.gpus_per_node, s.exclusive, s.segment,
            tuple(sorted(s.additional.items())))


def group_for_arrays(plans: Sequence[JobPlan]) -> list[list[int]]:
    """Indices of plans that can share one sbatch call (same parameters but time limit and job name)."""
    groups: dict[tuple[Any, ...], list[int]] = {}
    for index, plan in enumerate(plans):
        groups.setdefault(_array_key(plan), []).append(index)
    return list(groups.values())


def common_name(names: Sequence[str]) -> str:
    prefix = os.path.commonprefix(list(names)).rstrip("_-")
    return prefix or names[0]


def slurm_parameters(plans: Sequence[JobPlan], segment_supported: bool = True) -> dict[str, Any]:
    """submitit SlurmExecutor parameters for a group of plans (the body runs once, without srun).

    Each node gets the same GRES (--gpus-per-node) and tasks; --segment only where sbatch knows it."""
    first = plans[0].slurm
    params: dict[str, Any] = {
        "job_name": common_name([p.slurm.job_name for p in plans]),
        "nodes": first.nodes,
        "ntasks_per_node": first.ntasks_per_node,
        "time": max(p.slurm.time_min for p in plans),
        "use_srun": False,
        "signal_delay_s": 60,
    }
    if first.exclusive:
        params["exclusive"] = True
    for key, value in (("partition", first.partition), ("account", first.account),
                       ("gpus_per_node", first.gpus_per_node)):
        if value is not None:
            params[key] = value
    additional = dict(first.additional)
    if first.segment is not None and segment_supported and "segment" not in additional:
        additional["segment"] = first.segment
    if additional:
        params["additional_parameters"] = additional
    return params


@dataclass
class Submitted:
    job_id: str
    plan: JobPlan
    executor: str
    folder: Path
    pid: int | None = None  # local jobs: the controller process to signal
    stdout: Path | None = None  # submitit's log of the batch step (linked where NVIDIA's users look)


def _sbatch_env(plan: JobPlan) -> dict[str, str]:
    """The environment submitit's sbatch call (and so the job) sees: the resolved one of this invocation."""
    env = dict(plan.env)
    for var in ("SBATCH_TIMELIMIT", "SBATCH_JOB_NAME", "SBATCH_ARRAY_INX",  # our own flags must win
                "LLMB_JOB_ID", local_jobs.TOKEN_VAR):  # a job's id is its own, never one inherited
        env.pop(var, None)
    return env


def task_ranges(tasks: Sequence[int]) -> str:
    """Slurm's array-index syntax for ``tasks``: [0, 1, 2, 5, 7, 8] -> ``0-2,5,7-8``."""
    parts: list[str] = []
    ordered = sorted(set(tasks))
    start = prev = ordered[0]
    for task in [*ordered[1:], None]:
        if task is not None and task == prev + 1:
            prev = task
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if task is not None:
            start = prev = task
    return ",".join(parts)


def _retarget_tasks(jobs: Sequence[Any], plans: Sequence[JobPlan], array_time: int,
                    array_name: str) -> list[str]:
    """Give each array task its own time limit and name; returns warnings for updates that failed.

    Tasks that need the same changes share one ``scontrol update JobId=<array>_[<ranges>]`` call (a sweep of
    1,000 points over 4 use cases takes at most 8 calls, not 1,000); tasks that already have the array's name and
    time limit need none. When a shared call fails, each of its tasks is retried alone so that the warnings name
    exactly the tasks that could not be changed.
    """
    groups: dict[tuple[str, tuple[str, ...]], list[tuple[int, str]]] = {}
    for job, plan in zip(jobs, plans):
        changes = []
        if plan.slurm.time_min != array_time:
            changes.append(f"TimeLimit={plan.slurm.time_min}")
        if plan.slurm.job_name != array_name:
            changes.append(f"JobName={plan.slurm.job_name}")
        if not changes:
            continue
        array_id, _, task = str(job.job_id).partition("_")
        key = (array_id if task.isdigit() else str(job.job_id), tuple(changes))
        groups.setdefault(key, []).append((int(task) if task.isdigit() else -1, str(job.job_id)))
    warnings = []
    for (array_id, changes), tasks in groups.items():
        if len(tasks) > 1 and all(task >= 0 for task, _ in tasks):
            try:
                slurm.update_job(f"{array_id}_[{task_ranges([t for t, _ in tasks])}]", changes)
                continue
            except SlurmError:
                pass  # retried task by task below, so that the warnings name exactly the tasks that failed
        for _, job_id in tasks:
            try:
                slurm.update_job(job_id, changes)
            except SlurmError as exc:
                warnings.append(f"{exc} ({job_id}: {' '.join(changes)})")
    return warnings


def submit_plans(plans: Sequence[JobPlan], request: RunRequest, executor_name: str,
                 python: str | None = None) -> tuple[list[Submitted], list[str]]:
    """Submit every plan of a request; returns the submitted jobs (in plan order) and warnings."""
    return submit_jobs(plans, records.workload_dir(request.install_dir, request.workload), executor_name, python)


def submit_jobs(plans: Sequence[JobPlan], workload_dir: Path, executor_name: str,
                python: str | None = None) -> tuple[list[Submitted], list[str]]:
    """Submit plans of one workload (benchmark jobs, the setup job); each group of alike plans is one array.

    Each job gets exactly its plan's environment (given to sbatch or the local controller, never swapped into
    this process's ``os.environ``), less the SBATCH_* input variables our own parameters must win over.
    """
    from .executors import make_executor

    folder = workload_dir / records.SUBMITIT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    submitted: list[Submitted | None] = [None] * len(plans)
    warnings: list[str] = []
    segment_supported = True
    if executor_name == "slurm" and any(p.slurm.segment is not None for p in plans):
        from .layout import sbatch_supports_segment

        version = slurm.sbatch_version(plans[0].env)
        segment_supported = sbatch_supports_segment(version)
        if not segment_supported:
            warnings.append(f"sbatch ({version or 'version unknown'}) does not know --segment (Slurm 23.11+): "
                            f"submitted without the NVLink segment; the nodes may span racks")
    try:
        for group in group_for_arrays(plans):
            group_plans = [plans[i] for i in group]
            env, where, token = _sbatch_env(group_plans[0]), folder, None
            if executor_name == "local":  # ids unique across machines and PID namespaces; a folder per group
                token = local_jobs.new_token()
                env[local_jobs.TOKEN_VAR], where = token, folder / f"local-{token}"
            executor = make_executor(executor_name, where, env, python)
            if executor_name == "slurm":
                params = slurm_parameters(group_plans, segment_supported)
                executor.update_parameters(**params)
            else:
                executor.update_parameters(timeout_min=max(p.slurm.time_min for p in group_plans))
            if len(group_plans) == 1:
                jobs = [executor.submit(group_plans[0].body, *group_plans[0].body_args)]
            else:
                with executor.batch():
                    jobs = [executor.submit(p.body, *p.body_args) for p in group_plans]
                if executor_name == "slurm":
                    warnings += _retarget_tasks(jobs, group_plans, params["time"], params["job_name"])
            for index, job in zip(group, jobs):
                if token is None:
                    submitted[index] = Submitted(str(job.job_id), plans[index], executor_name,
                                                 folder / str(job.job_id), stdout=Path(job.paths.stdout))
                else:
                    submitted[index] = Submitted(local_jobs.local_job_id(token, job.job_id), plans[index],
                                                 executor_name, where / str(job.job_id), pid=int(job.job_id),
                                                 stdout=Path(job.paths.stdout))
    except LlmbError:
        raise
    except Exception as exc:
        raise HostError(f"submission failed: {type(exc).__name__}: {str(exc).strip().splitlines()[0]}") from exc
    return [s for s in submitted if s is not None], warnings


_JOB_IDS_SLOT = "\0job_ids\0"


def write_records(submitted: Sequence[Submitted], request: RunRequest, argv: Sequence[str]) -> Path:
    """One record per job id (found again from any shell by `llmb-run jobs`), plus one per submission."""
    command_line = safety.scrub(shlex.join(safety.redact_argv(["llmb-run", *argv])), request.env)
    common = {"workload": request.workload, "model_size": request.model_size, "dtype": request.dtype,
              "scale": request.scale, "gpu_type": request.gpu_type, "command_line": command_line}
    return record_jobs(records.workload_dir(request.install_dir, request.workload), submitted, common)


def record_jobs(wdir: Path, submitted: Sequence[Submitted], common: Mapping[str, Any]) -> Path:
    """Write each job's record (``common`` must name the ``workload`` and the ``command_line``, redacted); a
    record is never overwritten: an existing one is another job's.

    Every record lists the submission's job ids: that list is encoded once and spliced into each record (the
    text is what ``json.dumps(record, indent=2)`` writes), and the files are written and fsynced by a small
    thread pool, so that a 1,000-job sweep costs well under a second instead of growing with its square.
    """
    from concurrent.futures import ThreadPoolExecutor

    ids_text = json.dumps([s.job_id for s in submitted], indent=2).replace("\n", "\n  ")
    common = {**common, "submitted": time.time(), "job_ids": _JOB_IDS_SLOT}
    slot = json.dumps(_JOB_IDS_SLOT)
    texts = []
    for item in submitted:
        local = {"pid": item.pid, "host": socket.gethostname(), "boot_id": local_jobs.boot_id()} \
            if item.pid is not None else {}
        record = {
            **common, "job_id": item.job_id, "executor": item.executor, "submitit_folder": str(item.folder),
            **local, "plan": item.plan.to_dict(), **dict(item.plan.record),
            "environment": safety.redact_env({k: v for k, v in item.plan.env.items()
                                              if k.startswith(("SBATCH_", "LLMB_", "SLURM_MPI"))}),
        }
        text = json.dumps(record, indent=2, sort_keys=False, default=str).replace(slot, ids_text, 1) + "\n"
        texts.append((item, wdir / records.SUBMITTED_DIR / f"{records.safe_name(item.job_id)}.json", text))
    (wdir / records.SUBMITTED_DIR).mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(min(16, max(1, len(texts)))) as pool:  # fsync waits on the disk, not the CPU
        writes = [(item, path, pool.submit(records.write_text_atomic, path, text, overwrite=False))
                  for item, path, text in texts]
    for item, path, write in writes:
        try:
            write.result()
        except FileExistsError:
            raise HostError(f"job {item.job_id} was submitted, but a record for that id already exists ({path}) "
                            f"and was left as it is (job ids of two clusters sharing this LLMB_INSTALL collide); "
                            f"follow the job with squeue/sacct") from None
    return wdir / records.SUBMITTED_DIR


def submit_recorded(request: RunRequest, plans: list[JobPlan], executor_arg: str | None,
                    argv: Sequence[str], python: str | None = None) -> tuple[str, list[Submitted]]:
    """Submit, write the records `llmb-run jobs` reads, print warnings; (executor, submitted jobs)."""
    executor = choose_executor(executor_arg, request.env)
    submitted, warnings = submit_plans(plans, request, executor, python)
    write_records(submitted, request, argv)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return executor, submitted


def interrupted_wait(install_dir: Path, job_ids: Sequence[str], cancel: bool) -> int:
    """Ctrl-C while waiting: stop waiting, leave the jobs running (or cancel them when asked), say what next."""
    from llmb_plugin_deepseek_r1.host import tracking

    if cancel:
        for job_id in job_ids:
            try:
                tracking.cancel(install_dir, tracking.find_record(install_dir, job_id))
                print(f"interrupted: cancel requested for {job_id}", file=sys.stderr)
            except (HostError, ValidationError) as exc:
                print(f"interrupted: could not cancel {job_id}: {exc}", file=sys.stderr)
        return 130
    ids = " ".join(job_ids)
    print(f"interrupted: stopped waiting; the job(s) keep running: {ids}. Follow with `llmb-run jobs log "
          f"{job_ids[0]} --follow` or `llmb-run jobs wait {job_ids[0]}`; stop with `llmb-run jobs cancel "
          f"{job_ids[0]}`", file=sys.stderr)
    return 130
