"""Host commands beyond list/single/submit: jobs (tracking); each imports its work lazily."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any
from pathlib import Path

from .contract import COMMANDS
from .errors import EXIT_BENCHMARK_FAILED, EXIT_OK, ValidationError
from llmb_plugin_deepseek_r1.tuning import bulk_work

MAX_TIMEOUT_S = 30 * 24 * 3600.0


def _install_dir() -> Path:
    from .cluster import resolve_context

    return resolve_context(os.environ, Path.cwd()).install_dir


def _json_rows(rows: list[dict[str, Any]]) -> str:
    """``json.dumps(rows, indent=2)`` for flat rows of strings and None that share their keys, by one template per
    row and the C string encoder (the indenting encoder is pure Python: most of `jobs list --json` over thousands
    of jobs)."""
    keys = list(rows[0]) if rows else []
    if not rows or any(list(r) != keys or any(not isinstance(v, (str, type(None))) for v in r.values())
                       for r in rows):
        return json.dumps(rows, indent=2)
    from json.encoder import encode_basestring_ascii as quote

    template = "  {\n" + ",\n".join(f"    {quote(k)}: %s" for k in keys) + "\n  }"
    body = ",\n".join(template % tuple(["null" if r[k] is None else quote(r[k]) for k in keys]) for r in rows)
    return "[\n" + body + "\n]"


def cmd_jobs(args: argparse.Namespace) -> int:
    from llmb_plugin_deepseek_r1.host import tracking

    install = _install_dir()
    if args.timeout is not None and not 0 < args.timeout <= MAX_TIMEOUT_S:  # NaN fails too
        raise ValidationError(f"--timeout {args.timeout} is not valid: expected seconds in (0, {MAX_TIMEOUT_S:.0f}]")
    if args.action == "list":
        rows = []
        with bulk_work():  # thousands of small JSON records: no GC passes; sacct's thread resumes promptly
            listed = tracking.list_jobs_with_nodes(install)
        minutes: dict[int, str] = {}  # a sweep's jobs share a few minutes: format each minute once
        for record, state, source, nodes in listed:
            minute = int(record["submitted"] // 60)
            if minute not in minutes:  # time zones offset by whole minutes: every second of it reads the same
                minutes[minute] = time.strftime("%Y-%m-%d %H:%M", time.localtime(record["submitted"]))
            rows.append({"job_id": record["job_id"], "name": record["plan"]["name"], "state": state,
                         "source": source, "executor": record.get("executor"), "nodes": nodes,
                         "submitted": minutes[minute]})
        if args.json:
            print(_json_rows(rows))
        else:
            width = max([14] + [len(r["job_id"]) + 2 for r in rows])  # local ids are longer than Slurm's
            for r in rows:
                print(f"{r['job_id']:<{width}}{r['state']:<11}{r['submitted']:<18}{r['nodes'] or '-':<14}{r['name']}  "
                      f"({r['source']})")
            if not rows:
                print("No submitted jobs.")
        return 0
    if not args.job_id:
        raise ValidationError(f"llmb-run jobs {args.action} needs a job id")
    record = tracking.find_record(install, args.job_id)
    if args.action == "show":
        state, source = tracking.job_state(install, record)
        results = tracking.result_summaries(install, record) if state in tracking.TERMINAL else []
        from .safety import redact_record

        shown = redact_record(record)  # records written before redaction may still hold a secret --env value
        if args.json:
            print(json.dumps({"job_id": args.job_id, "state": state, "source": source, "record": shown,
                              "nodes": tracking.job_nodes(install, record),
                              "results": [dict(s.details) for s in results]}, indent=2, default=str))
        else:
            print(f"state from {source}; nodes {tracking.job_nodes(install, record) or '-'}; submitted as: "
                  f"{shown.get('command_line', '?')}")
            print(tracking.format_summary(args.job_id, state, results))
        return 0
    if args.action == "wait":
        state = tracking.wait_for(install, record, args.timeout or tracking.default_timeout(record))
        print(tracking.format_summary(args.job_id, state, tracking.result_summaries(install, record)))
        return EXIT_OK if state == "COMPLETED" else EXIT_BENCHMARK_FAILED
    if args.action == "cancel":
        tracking.cancel(install, record)
        print(f"cancel requested for {args.job_id}")
        return 0
    return _print_log(install, record, args)


def _print_log(install: Path, record: dict, args: argparse.Namespace) -> int:
    from llmb_plugin_deepseek_r1.host import tracking

    paths = tracking.log_paths(record)
    offsets = {p: 0 for p in paths}
    deadline = time.monotonic() + (args.timeout or tracking.default_timeout(record))
    while True:
        for path in paths:
            try:
                with open(path, "rb") as handle:
                    handle.seek(offsets[path])
                    chunk = handle.read()
            except OSError:
                continue
            offsets[path] += len(chunk)
            sys.stdout.write(chunk.decode(errors="replace"))
        sys.stdout.flush()
        if not args.follow:
            return 0
        state, _ = tracking.job_state(install, record)
        if state in tracking.TERMINAL or time.monotonic() >= deadline:
            return 0
        time.sleep(1.0)


DELEGATED = COMMANDS


def split_delegated(argv: list[str]) -> argparse.Namespace:
    """`llmb-run COMMAND [-w W] OPTIONS...`: take -w/--workload out, keep every other word in order."""
    workload = None
    rest: list[str] = []
    words = iter(argv[1:])
    for word in words:
        if word in ("-w", "--workload"):
            workload = next(words, None)
            if workload is None:
                raise ValidationError(f"llmb-run {argv[0]}: {word} needs a workload key")
        elif word.startswith("--workload="):
            workload = word.split("=", 1)[1]
        else:
            rest.append(word)
    method = argv[0]
    return argparse.Namespace(command=method, workload=workload, rest=rest,
                              handler=lambda args: _delegate(method, args))


def _delegate(method: str, args: argparse.Namespace) -> int:
    """Hand a command to the workload's optional method ``method(argv, context) -> int``."""
    from .plugins import shared_registry as _registry
    from .cluster import resolve_context

    registry = _registry()
    if args.workload is None:
        offering = sorted(k for k, w in registry.workloads.items() if method in w.commands)
        if len(offering) != 1:
            raise ValidationError(f"choose a workload with -w; offering `{method}`: {', '.join(offering) or 'none'}")
        args.workload = offering[0]
    workload = registry.get(args.workload)
    context = resolve_context(os.environ, Path.cwd())
    rest = list(args.rest)
    if rest and rest[0] == "--":
        rest = rest[1:]
    return workload.run_command(method, rest, context)


def add_host_commands(sub: argparse._SubParsersAction) -> None:
    for method, help_text in (("setup", "prepare a workload: weights, container image, datasets (the installer's "
                                        "step; `llmb-run setup -w W -- --help` for its options)"),
                              ("verify", "check a workload's prerequisites, e.g. weight integrity"),
                              ("results", "one table of all runs of a workload, compared with references"),
                              ("archive", "pack a workload's experiments (logs, results, YAML) into one file")):
        p = sub.add_parser(method, help=help_text)
        p.add_argument("-w", "--workload", help="workload key (optional when only one workload offers this)")
        p.add_argument("rest", nargs=argparse.REMAINDER, help="options for the workload's own command")
        p.set_defaults(handler=lambda args, _m=method: _delegate(_m, args))

    p = sub.add_parser("jobs", help="list, show, follow, wait for or cancel submitted jobs")
    p.add_argument("action", nargs="?", default="list", choices=("list", "show", "log", "wait", "cancel"),
                   help="default: list (as `llmb-run jobs` in llmb-run 1.15)")
    p.add_argument("job_id", nargs="?")
    p.add_argument("--follow", "-f", action="store_true", help="with log: keep printing until the job ends")
    p.add_argument("--timeout", type=float, help="seconds to wait at most (default: the job's time limit + 10 min)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_jobs)
