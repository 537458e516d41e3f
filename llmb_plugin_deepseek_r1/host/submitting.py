"""Submit prepared tasks: the workload's checks on this node, submitit, our records and NVIDIA's
(llmb-config_<jobid>.yaml, slurm-<jobid>.out), our job lines and NVIDIA's `SUBMITTED: ... jobid=N` line."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from . import records
from .errors import ValidationError
from .run_config import llmb_config, write_job_records
from .runs import Prepared
from .submit import refuse_nested, submit_recorded


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


def submit_prepared(prepared: list[Prepared], args: argparse.Namespace) -> int:
    """Check every task first (nothing is submitted when one is broken), then submit them in order."""
    for item in prepared:
        refuse_nested(item.request.env, args.allow_nested)
        _check_before_submit(item, args.no_preflight)
    outcomes: list[dict[str, Any]] = []
    job_ids: list[str] = []
    for item in prepared:
        executor, submitted = submit_recorded(item.request, item.plans, args.executor, sys.argv[1:])
        wdir = records.workload_dir(item.request.install_dir, item.request.workload)
        jobs = []
        for s in submitted:
            document = llmb_config(s.job_id, s.plan, item.request, item.workload.metadata, item.context.cluster,
                                   profile=item.task.profile, env_overrides=item.overrides)
            config = write_job_records(s.job_id, s.plan, s.stdout, document, wdir)
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

    install = prepared[0].request.install_dir
    if args.json:
        document: dict[str, Any] = dict(outcomes[0]) if len(outcomes) == 1 else {"tasks": outcomes}
        if args.wait:
            document["outcomes"] = tracking.wait_all(install, job_ids)
        print(json.dumps(document, indent=2))
        return 0 if all(o["state"] == "COMPLETED" for o in document.get("outcomes", [])) else 1
    return tracking.wait_and_summarise(install, job_ids) if args.wait else 0
