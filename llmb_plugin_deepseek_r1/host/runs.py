"""`llmb-run single` / `submit`: tasks -> resolved requests (environment with its sources) -> job plans ->
dry run or submission. The job environment NVIDIA's launchers set is added here, so any workload gets it; a
submission leaves our records and NVIDIA's (llmb-config_<jobid>.yaml, slurm-<jobid>.out) and prints our job
lines and NVIDIA's `SUBMITTED: ... jobid=N` line."""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping, NamedTuple

from .cluster import DERIVED, SHELL, ClusterConfig, HostContext, check_installed, resolve_context
from .contract import JobPlan, RunRequest, is_secret_name
from . import errors, records, safety
from .errors import ConfigError, ValidationError
from .render import REDACTED, plans_document, plans_text, scrub
from .tasks import (SubmitRequest, Task, check_combination, check_no_additional_params, parse_env_flags,
                    parse_job_file, slurm_parameters, tasks_from_flags)
from .validate import MAX_JOBS, MAX_REPEATS, validate_request


class Prepared(NamedTuple):
    """One task, resolved: the workload, its request, its plans and where each variable came from."""

    task: Task
    repeats: int
    workload: Any
    request: RunRequest
    plans: list[JobPlan]
    context: HostContext
    sources: Mapping[str, str]
    overrides: Mapping[str, str]
    python: str | None = None  # the job's interpreter when cluster_config.yaml names the workload's venv


def select_tasks(args: argparse.Namespace, registry: Any, base: HostContext) -> list[Task]:
    """The tasks the command line (or its job file) asks for, before validation."""
    if args.command == "single":
        task = Task(args.workload, args.model_size.lower(), args.dtype.lower(), args.scale, args.profile)
        if args.repeats < 1:
            raise ValidationError(f"--repeats {args.repeats} must be at least 1")
        return [task] * args.repeats
    req = SubmitRequest(workload=args.workload, model_size=args.model_size, dtype=args.dtype, scale=args.scale,
                        max_scale=args.max_scale, min_scale=args.min_scale, exact_scales=args.exact_scales,
                        repeats=args.repeats, profile=args.profile, force=args.force)
    if args.file:
        check_combination(req, file_mode=True)
        return parse_job_file(Path(args.file))
    metadata = {key: w.metadata for key, w in registry.workloads.items()}
    tasks = tasks_from_flags(req, metadata, base.gpu_type, base.cluster.installed)
    if not tasks:
        raise ValidationError(f"no matching job configurations for GPU type {base.gpu_type}: check -w/--dtype/"
                              f"--scale against `llmb-run list` (inference workloads are discovered only when "
                              f"named with -w)")
    return tasks


def job_environment(context: HostContext, task: Task, explicit: list[str], dump_env: bool
                    ) -> tuple[dict[str, str], dict[str, str]]:
    """The variables NVIDIA's launchers give every job; a value set in cluster_config.yaml or --env is kept."""
    env, sources = dict(context.env), dict(context.sources)
    derived = {"MODEL_SIZE": task.model_size, "DTYPE": task.dtype, "JOB_TOTAL_GPUS": str(task.scale),
               "GPU_TYPE": context.gpu_type}
    if task.profile:
        derived["ENABLE_PROFILE"] = "true"
    if dump_env:
        derived["LLMB_DUMP_ENV"] = "true"
    for key, value in derived.items():
        if key not in sources:
            env[key], sources[key] = value, DERIVED
    if explicit:
        existing = [k for k in env.get("LLMB_CONTAINER_ENV", "").split(",") if k]
        env["LLMB_CONTAINER_ENV"] = ",".join(dict.fromkeys([*existing, *explicit]))
        sources["LLMB_CONTAINER_ENV"] = DERIVED
    sources.setdefault("LLMB_INSTALL", SHELL)
    return env, sources


def job_python(context: HostContext, workload: str) -> str | None:
    """``workloads.config.<key>.venv_path``/bin/python3 when cluster_config.yaml names the workload's venv (the
    installer's), checked on this node (shared storage); None: this interpreter runs the job."""
    venv = context.cluster.workload(workload).venv_path
    if not venv:
        return None
    python = Path(os.path.expanduser(venv)) / "bin" / "python3"
    if not os.access(python, os.X_OK):
        raise ConfigError(f"{context.cluster.path}: workloads.config.{workload}.venv_path {venv} has no "
                          f"bin/python3: fix the path, or re-run the installer for {workload}")
    return str(python)


def _with_experiment_dir(plan: JobPlan) -> JobPlan:
    """LLMB_EXPERIMENT_DIR: the job's first use case's result folder (where llmb-config_<jobid>.yaml goes)."""
    result_dir = plan.use_cases[0].get("result_dir") if plan.use_cases else None
    return replace(plan, env={**plan.env, "LLMB_EXPERIMENT_DIR": str(result_dir)}) if result_dir else plan


def prepare(task: Task, repeats: int, args: argparse.Namespace, registry: Any, environ: Mapping[str, str],
            cwd: Path, env_flags: Mapping[str, str], slurm: Mapping[str, Any], cluster: ClusterConfig) -> Prepared:
    workload = registry.get(task.workload)
    overrides = {**task.env, **env_flags}
    context = resolve_context(environ, cwd, overrides, workload=workload.key, cluster=cluster)
    safety.mount_path("LLMB_INSTALL", str(context.install_dir))  # mounted into the container, in #SBATCH paths
    check_installed(context.cluster, workload.key, args.force)
    validate_request(workload.metadata, workload.key, context.gpu_type, task.model_size, task.dtype, task.scale,
                     force=args.force)
    check_no_additional_params(slurm, context.env, context.sources.get("ADDITIONAL_SLURM_PARAMS", SHELL))
    env, sources = job_environment(context, task, list(overrides), args.dump_env)
    request = RunRequest(
        workload=workload.key, model_size=task.model_size.lower(), dtype=task.dtype.lower(), scale=task.scale,
        gpu_type=context.gpu_type, install_dir=context.install_dir, env=env, one_allocation=args.one_allocation,
        repeats=repeats, slurm_args=dict(slurm), cpu_partition=context.cluster.cpu_partition,
    )
    plans = workload.plan(request)
    if not plans:
        raise ValidationError(f"{workload.key}: the request resolved to zero jobs; nothing to do")
    plans = [_with_experiment_dir(p) for p in plans]
    if any("LLMB_EXPERIMENT_DIR" in p.env for p in plans):
        sources["LLMB_EXPERIMENT_DIR"] = DERIVED
    return Prepared(task, repeats, workload, request, plans, context, sources, overrides,
                    job_python(context, workload.key))


def environment_document(item: Prepared) -> dict[str, dict[str, str]]:
    """The job's variables this invocation set or the workload reads, each with its value and source."""
    env = item.request.env
    names = set(item.sources) | {k for k in env if k.startswith(("SBATCH_", "LLMB_"))}
    names |= {k for k in item.workload.knobs if k in env}  # the knobs the workload declares (the contract)
    for plan in item.plans:
        names |= {"LLMB_EXPERIMENT_DIR"} if "LLMB_EXPERIMENT_DIR" in plan.env else set()
    doc = {}
    for name in sorted(names):
        value = item.plans[0].env.get(name, env.get(name))
        if value is None:
            continue
        doc[name] = {"value": REDACTED if is_secret_name(name) else value, "source": item.sources.get(name, SHELL)}
    return doc


def _python_document(item: Prepared) -> dict[str, str]:
    if item.python:
        return {"path": item.python, "source": f"cluster_config.yaml workloads.config.{item.workload.key}.venv_path"}
    return {"path": sys.executable, "source": "this llmb-run's interpreter"}


def _print_provenance(item: Prepared) -> None:
    cluster = item.context.cluster
    where = f"{cluster.path} (schema {cluster.schema_version})" if cluster.path else "none found (./, $LLMB_INSTALL/)"
    lines = [f"cluster_config.yaml: {where}",
             f"gpu type: {item.context.gpu_type} (from {item.context.gpu_type_source})",
             f"install: {item.request.install_dir}; {len(item.plans)} job(s) for {item.task.label().rstrip()}"]
    lines += [f"  {name}={entry['value']}  <- {entry['source']}" for name, entry in
              environment_document(item).items()]
    print(scrub("\n".join(lines), item.request.env), file=sys.stderr)


def run_command(args: argparse.Namespace, registry: Any, environ: Mapping[str, str], cwd: Path) -> int:
    if getattr(args, "proxy", False):
        raise ValidationError("--proxy needs proxy_scales in the workload's metadata, and no installed workload of "
                              "this host defines them")
    env_flags = parse_env_flags(args.env)
    slurm = slurm_parameters(nice=args.nice, nodelist=args.nodelist, exclude=args.exclude,
                             reservation=args.reservation, segment=args.segment, raw=args.slurm_arg)
    base = resolve_context(environ, cwd, env_flags)
    if not 1 <= args.repeats <= MAX_REPEATS:
        raise ValidationError(f"--repeats {args.repeats} is not valid: expected 1 to {MAX_REPEATS}")
    tasks = select_tasks(args, registry, base)
    prepared = [prepare(task, len(list(group)), args, registry, environ, cwd, env_flags, slurm, base.cluster)
                for task, group in itertools.groupby(tasks)]
    jobs = sum(len(item.plans) for item in prepared)
    if jobs > MAX_JOBS:
        raise ValidationError(f"the request resolved to {jobs} jobs (tasks x use cases x sweep points x repeats); at "
                              f"most {MAX_JOBS} may be submitted at once: split it")
    if args.verbose:
        for item in prepared:
            _print_provenance(item)
    if args.dry_run:
        return print_dry_run(prepared, args.json)
    return submit_prepared(prepared, args)


def print_dry_run(prepared: list[Prepared], as_json: bool) -> int:
    if as_json:
        docs = []
        for item in prepared:
            doc = plans_document(item.request, item.plans)
            doc["task"] = item.task.label().rstrip()
            doc["environment"] = environment_document(item)
            doc["python"] = _python_document(item)
            docs.append(doc)
        text = json.dumps(docs[0] if len(docs) == 1 else {"tasks": docs}, indent=2)
        print(scrub(text, prepared[0].request.env))
        return 0
    print(f"Jobs ({sum(item.repeats for item in prepared)}):")
    for item in prepared:
        print(f"  - {item.task.label().rstrip()}" + (f"  x{item.repeats}" if item.repeats > 1 else ""))
    for item in prepared:
        print()
        print(plans_text(item.request, item.plans))
        python = _python_document(item)
        print(f"  job python: {python['path']}  <- {python['source']}")
        print("  environment (value <- source):")
        for name, entry in environment_document(item).items():
            print(scrub(f"    {name}={entry['value']}  <- {entry['source']}", item.request.env))
    print("Dry run enabled. Jobs will not be submitted.")
    return 0


def _check_before_submit(item: Prepared, skip: bool) -> None:
    check = getattr(item.workload, "check_before_submit", None)
    if check is None or skip:
        return
    problems = list(check(item.request, item.plans))
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        raise ValidationError(f"{len(problems)} problem(s) found before submitting; nothing was submitted "
                              f"(fix them, or pass --no-preflight)")


def _in_threads(write: Any, items: list[tuple[Any, ...]]) -> list[Any]:
    """``[write(*item) for item in items]`` on a few threads: each file's fsync waits on the disk, not the CPU,
    so a 1,000-job sweep's records do not take a thousand disk round trips in a row. Results in input order;
    the first error is raised."""
    if len(items) < 2:
        return [write(*item) for item in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(min(16, len(items))) as pool:
        futures = [pool.submit(write, *item) for item in items]
    return [future.result() for future in futures]


def submit_prepared(prepared: list[Prepared], args: argparse.Namespace) -> int:
    """Check every task first (nothing is submitted when one is broken), then submit them in order."""
    from .run_config import llmb_config, write_job_records
    from .submit import refuse_nested, submit_recorded

    for item in prepared:
        refuse_nested(item.request.env, args.allow_nested)
        _check_before_submit(item, args.no_preflight)
    outcomes: list[dict[str, Any]] = []
    job_ids: list[str] = []
    for item in prepared:
        executor, submitted = submit_recorded(item.request, item.plans, args.executor, sys.argv[1:], item.python)
        wdir = records.workload_dir(item.request.install_dir, item.request.workload)
        jobs = []
        documents = [llmb_config(s.job_id, s.plan, item.request, item.workload.metadata, item.context.cluster,
                                 profile=item.task.profile, env_overrides=item.overrides) for s in submitted]
        configs = _in_threads(lambda s, doc: write_job_records(s.job_id, s.plan, s.stdout, doc, wdir),
                              list(zip(submitted, documents)))
        for s, config in zip(submitted, configs):
            jobs.append({"job_id": s.job_id, "name": s.plan.name, "time_limit_min": s.plan.slurm.time_min,
                         "use_cases": [u.get("name") for u in s.plan.use_cases],
                         "llmb_config": str(config) if config else None,
                         "workdir": s.plan.env.get("LLMB_EXPERIMENT_DIR")})
        job_ids += [j["job_id"] for j in jobs]
        outcomes.append({"task": item.task.label().rstrip(), "executor": executor, "jobs": jobs})
        if not args.json:
            print(f"Submitted {len(jobs)} job(s) with the {executor} executor "
                  f"(records in {wdir / records.SUBMITTED_DIR}):")
            for job in jobs:
                print(f"  {job['job_id']}  {job['name']}  time limit {job['time_limit_min']} min")
            for job in jobs:
                print(f"SUBMITTED: {item.task.label()} jobid={job['job_id']} workdir={job['workdir']}")
            sys.stdout.flush()
    from . import tracking

    from .submit import interrupted_wait

    install = prepared[0].request.install_dir
    try:
        if args.json:
            document: dict[str, Any] = dict(outcomes[0]) if len(outcomes) == 1 else {"tasks": outcomes}
            if args.wait:
                document["outcomes"] = tracking.wait_all(install, job_ids)
            print(json.dumps(document, indent=2))
            return errors.EXIT_OK if all(o["state"] == "COMPLETED" for o in document.get("outcomes", [])) \
                else errors.EXIT_BENCHMARK_FAILED
        return tracking.wait_and_summarise(install, job_ids) if args.wait else errors.EXIT_OK
    except KeyboardInterrupt:  # Ctrl-C while waiting: the jobs keep running unless --cancel-on-interrupt
        return interrupted_wait(install, job_ids, args.cancel_on_interrupt)
