"""`llmb-run`: argument parsing and dispatch only. Exit codes: :mod:`.errors` (README's table)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from .contract import RunRequest, is_secret_name
from . import errors
from .contract import Workload
from .errors import ValidationError
from .plugins import Registry, shared_registry as _registry


def _key_value(text: str) -> tuple[str, str]:
    from .safety import key_value

    try:
        return key_value(text)
    except ValueError as exc:  # ArgumentTypeError: argparse then prints our words, never the (secret) value
        raise argparse.ArgumentTypeError(str(exc)) from None


def _slurm_key_value(text: str) -> tuple[str, str]:
    """``--slurm-arg key=value``: the key is checked as a sbatch option name later (safety.slurm_args)."""
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text[:60]!r} without '='")
    return key, value


def _add_run_arguments(parser: argparse.ArgumentParser, *, later_spelling: bool) -> None:
    parser.add_argument("-w", "--workload", required=True, help="workload key, e.g. inference_deepseek-r1")
    parser.add_argument("-s", "--model_size", "--model-size", dest="model_size", required=True)
    if later_spelling:  # `submit`: -d is the dtype, the dry run is spelled out
        parser.add_argument("-d", "--dtype", required=True)
        parser.add_argument("--dry-run", "--dryrun", dest="dry_run", action="store_true",
                            help="print the jobs that would be submitted; touch nothing")
    else:  # `single` (llmb-run 1.2): -d is the dry run
        parser.add_argument("--dtype", required=True)
        parser.add_argument("-d", "--dryrun", "--dry-run", dest="dry_run", action="store_true",
                            help="print the jobs that would be submitted; touch nothing")
    parser.add_argument("--scale", required=True, type=int, help="number of GPUs")
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--env", action="append", type=_key_value, default=[], metavar="KEY=VALUE",
                        help="set a knob for this invocation (wins over the shell and cluster_config.yaml)")
    parser.add_argument("--slurm-arg", action="append", type=_slurm_key_value, default=[], metavar="KEY=VALUE",
                        help="extra sbatch parameter, e.g. --slurm-arg reservation=bench")
    parser.add_argument("-r", "--repeats", type=int, default=1, help="run each job N times (at most 100)")
    parser.add_argument("--one-allocation", action="store_true",
                        help="run all use cases in one allocation (time limit = sum of theirs)")
    parser.add_argument("--executor", choices=("auto", "slurm", "local"), default=None,
                        help="where jobs run: Slurm when sbatch is reachable (auto), or this machine")
    parser.add_argument("--allow-nested", action="store_true",
                        help="allow submitting from inside a Slurm allocation (SLURM_JOB_ID set)")
    parser.add_argument("--wait", action="store_true", help="wait for the jobs and print their verdicts (Ctrl-C stops "
                        "waiting and leaves the jobs running)")
    parser.add_argument("--cancel-on-interrupt", action="store_true",
                        help="with --wait: Ctrl-C cancels the jobs instead of leaving them running")
    parser.add_argument("--no-preflight", action="store_true",
                        help="skip the workload's checks on this node before submitting (weights, image...)")


def build_parser(registry: Registry | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmb-run", description="Launch LLM benchmark workloads on Slurm.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("list", help="list installed workloads and what they support")
    p.add_argument("-w", "--workload", help="show one workload in detail")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_list)

    p = sub.add_parser("single", help="run one workload configuration (llmb-run 1.2 spelling)")
    _add_run_arguments(p, later_spelling=False)
    p.set_defaults(handler=cmd_run)

    p = sub.add_parser("submit", help="run one workload configuration (later spelling)")
    _add_run_arguments(p, later_spelling=True)
    p.set_defaults(handler=cmd_run)

    from . import commands

    commands.add_host_commands(sub)
    if registry is not None:
        registry.manager.hook.llmb_register_commands(subparsers=sub)
    return parser




def cmd_list(args: argparse.Namespace) -> int:
    registry = _registry()
    keys = [args.workload] if args.workload else sorted(registry.workloads)
    if args.workload:
        registry.get(args.workload)
    rows: list[dict[str, Any]] = []
    for key in keys:
        meta = registry.workloads[key].metadata
        configs = []
        for gpu, gpu_config in ((meta.get("run") or {}).get("gpu_configs") or {}).items():
            for mc in gpu_config.get("model_configs") or []:
                configs.append({"gpu_type": gpu, "model_size": mc.get("model_size"), "dtypes": mc.get("dtypes"),
                                "scales": mc.get("scales"), "exact_scales": bool(mc.get("exact_scales"))})
        rows.append({"workload": key, "plugin": registry.origins[key],
                     "description": (meta.get("general") or {}).get("description", ""), "configs": configs})
    broken = [{"plugin": b.name, "target": b.target, "error": b.error} for b in registry.broken]
    if args.json:
        print(json.dumps({"workloads": rows, "broken_plugins": broken}, indent=2))
        return 0
    if not rows:
        print("No workloads installed.")
    for row in rows:
        print(f"{row['workload']}  (plugin {row['plugin']})")
        if row["description"]:
            print(f"  {row['description']}")
        for c in row["configs"]:
            scales = ",".join(map(str, c["scales"] or []))
            print(f"  {c['gpu_type']}: model size {c['model_size']}, dtypes {','.join(c['dtypes'] or [])}, "
                  f"scales {scales}{' (exact)' if c['exact_scales'] else ''}")
    for b in broken:
        print(f"BROKEN plugin {b['plugin']} ({b['target']}): {b['error']}")
    return 0


def build_request(args: argparse.Namespace, environ: dict[str, str] | None = None,
                  cwd: Path | None = None) -> tuple[Workload, RunRequest]:
    """Command line + environment -> (workload, validated RunRequest)."""
    from . import safety
    from .cluster import resolve_context
    from .validate import MAX_REPEATS, validate_request

    registry = _registry()
    workload = registry.get(args.workload)
    for key, value in args.env:
        safety.no_control(f"--env {key}", value, secret=is_secret_name(key))
    slurm_args = safety.slurm_args(args.slurm_arg)
    context = resolve_context(os.environ if environ is None else environ, cwd or Path.cwd(), dict(args.env))
    safety.mount_path("LLMB_INSTALL", str(context.install_dir))  # mounted into the container, in #SBATCH paths
    validate_request(workload.metadata, workload.key, context.gpu_type, args.model_size, args.dtype, args.scale)
    if not 1 <= args.repeats <= MAX_REPEATS:
        raise ValidationError(f"--repeats {args.repeats} is not valid: expected 1 to {MAX_REPEATS}")
    request = RunRequest(
        workload=workload.key, model_size=args.model_size.lower(), dtype=args.dtype.lower(), scale=args.scale,
        gpu_type=context.gpu_type, install_dir=context.install_dir, env=context.env,
        one_allocation=args.one_allocation, repeats=args.repeats, slurm_args=slurm_args,
        cpu_partition=context.cluster.cpu_partition,
    )
    return workload, request


def cmd_run(args: argparse.Namespace) -> int:
    from .render import plans_json, plans_text

    workload, request = build_request(args)
    plans = workload.plan(request)
    if not plans:
        raise ValidationError(f"{workload.key}: the request resolved to zero jobs; nothing to do")
    from .validate import MAX_JOBS

    if len(plans) > MAX_JOBS:
        raise ValidationError(f"the request resolved to {len(plans)} jobs (use cases x sweep points x repeats); at "
                              f"most {MAX_JOBS} may be submitted at once: split the sweep")
    if args.verbose:
        from .render import scrub

        record = json.dumps(dict(plans[0].record), sort_keys=True, default=str)
        print(scrub(f"recorded with each job: {record}", request.env), file=sys.stderr)
        print(f"install: {request.install_dir}; gpu type: {request.gpu_type}; {len(plans)} job(s)", file=sys.stderr)
    if args.dry_run:
        print(plans_json(request, plans) if args.json else plans_text(request, plans))
        return 0
    from .submit import refuse_nested, submit_and_report

    refuse_nested(request.env, args.allow_nested)
    if not args.no_preflight:
        problems = list(workload.check_before_submit(request, plans))
        if problems:
            for problem in problems:
                print(f"error: {problem}", file=sys.stderr)
            raise ValidationError(f"{len(problems)} problem(s) found before submitting; nothing was submitted "
                                  f"(fix them, or pass --no-preflight)")
    return submit_and_report(workload, request, plans, args)


@errors.command
def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    needs_plugins = not argv or argv[0] not in ("--help", "-h")
    parser = build_parser(_registry() if needs_plugins else None)
    from .commands import DELEGATED, split_delegated

    if argv and argv[0] in DELEGATED:  # the workload parses its own options, in their original order
        args = split_delegated(argv)
    else:
        args = parser.parse_args(argv)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
