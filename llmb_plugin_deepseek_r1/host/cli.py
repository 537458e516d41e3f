"""`llmb-run`: argument parsing and dispatch only. Exit codes: :mod:`.errors` (README's table).

Speaks NVIDIA's llmb-run: `submit` with the flags of llmb-run 1.15 (global `-v`/`--version` before the command)
and `single`, the 25.07 (llmb-run 1.2) spelling.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from . import errors

if TYPE_CHECKING:  # pragma: no cover
    from .plugins import Registry

GLOBAL_VERBOSE = ("-v", "--verbose")


def _add_common_run_arguments(parser: argparse.ArgumentParser) -> None:
    """This project's own flags, shared by `single` and `submit`."""
    parser.add_argument("-v", "--verbose", action="store_true", help="say where every setting came from")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="set a variable for the job (wins over cluster_config.yaml and the shell)")
    parser.add_argument("--slurm-arg", action="append", default=[], metavar="KEY=VALUE|FLAG",
                        help="extra sbatch option without the leading --, e.g. constraint=gpu or exclusive")
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


def _add_single(sub: Any) -> None:
    p = sub.add_parser("single", help="run one workload configuration (llmb-run 1.2 / release 25.07 spelling)")
    p.add_argument("-w", "--workload", required=True, help="workload key, e.g. inference_deepseek-r1")
    p.add_argument("-s", "--model_size", "--model-size", dest="model_size", required=True)
    p.add_argument("--dtype", required=True)
    p.add_argument("--scale", required=True, type=int, help="number of GPUs")
    p.add_argument("-d", "--dryrun", "--dry-run", dest="dry_run", action="store_true",
                   help="print the jobs that would be submitted; touch nothing")
    p.add_argument("-p", "--profile", action="store_true", help="run the benchmark under nsys (ENABLE_PROFILE)")
    p.add_argument("-f", "--force", action="store_true", help="skip the installed-workload, dtype and scale checks")
    p.add_argument("-r", "--repeats", type=int, default=1, help="run each job N times (at most 100)")
    _add_common_run_arguments(p)
    p.set_defaults(handler=cmd_run, file=None, max_scale=None, min_scale=False, exact_scales=False, proxy=False,
                   dump_env=False, nice=None, nodelist=None, exclude=None, reservation=None, segment=None)


def _add_submit(sub: Any) -> None:
    p = sub.add_parser("submit", help="submit jobs: explicit, comma lists, scale discovery or a job file "
                                      "(llmb-run 1.15)")
    p.add_argument("-w", "--workload", help="workload key(s), comma-separated; <workload>_<size> picks one size")
    p.add_argument("-s", "--model-size", "--model_size", dest="model_size", help="model size (one workload only)")
    p.add_argument("-d", "--dtype", help="data type(s), comma-separated")
    p.add_argument("--scale", help="number(s) of GPUs, comma-separated")
    p.add_argument("--max-scale", type=int, help="discover scales up to this many GPUs")
    p.add_argument("--min-scale", action="store_true", help="only the smallest supported scale")
    p.add_argument("--exact-scales", action="store_true", help="only scales listed in the workload's metadata")
    p.add_argument("-f", "--file", help="job file: YAML (.yaml/.yml) or the simple text format")
    p.add_argument("-r", "--repeats", type=int, default=1, help="run each job N times (at most 100)")
    p.add_argument("-p", "--profile", action="store_true", help="run the benchmark under nsys (ENABLE_PROFILE)")
    p.add_argument("--dump-env", action="store_true", help="write the job's (redacted) environment beside its logs")
    p.add_argument("--proxy", action="store_true", help="use proxy scales (refused: this workload has none)")
    p.add_argument("--dry-run", "--dryrun", dest="dry_run", action="store_true",
                   help="print the jobs that would be submitted; touch nothing")
    p.add_argument("--force", action="store_true", help="skip the installed-workload, dtype and scale checks "
                                                        "(one explicit task only)")
    p.add_argument("--nice", type=int, help="lower the job priority (sbatch --nice)")
    p.add_argument("--nodelist", help="run only on these nodes")
    p.add_argument("--exclude", help="never run on these nodes")
    p.add_argument("--reservation", help="submit into a Slurm reservation")
    p.add_argument("--segment", type=int, help="Slurm segment size (nodes per NVLink domain segment)")
    _add_common_run_arguments(p)
    p.set_defaults(handler=cmd_run)


def _add_list(sub: Any) -> None:
    p = sub.add_parser("list", help="list installed workloads and what they support")
    p.add_argument("-w", "--workload", help="show one workload in detail")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_list)


#: The host's own launch commands: when the command line names one, the parser is built for it alone (the
#: other commands' parsers, and the workloads' registered commands, cost a dry run 2-3 ms for nothing).
LAUNCH_COMMANDS = {"list": _add_list, "single": _add_single, "submit": _add_submit}


def build_parser(registry: Registry | None = None, command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; only ``command``'s part when it is one of LAUNCH_COMMANDS."""
    parser = argparse.ArgumentParser(prog="llmb-run", description="Launch LLM benchmark workloads on Slurm.")
    parser.add_argument("-v", "--verbose", dest="global_verbose", action="store_true",
                        help="global: say where every setting came from (before the command)")
    parser.add_argument("--version", action="store_true", help="show the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    if command in LAUNCH_COMMANDS:
        LAUNCH_COMMANDS[command](sub)
        return parser
    for add in LAUNCH_COMMANDS.values():
        add(sub)

    from . import commands

    commands.add_host_commands(sub)
    if registry is not None:
        registry.manager.hook.llmb_register_commands(subparsers=sub)
    return parser


def _registry() -> Registry:
    """The plugins, discovered on first use (`jobs` and `--help` never need them)."""
    from .plugins import shared_registry

    return shared_registry()


def cmd_list(args: argparse.Namespace) -> int:
    from .listing import print_workloads

    return print_workloads(_registry(), args.workload, args.json)


def version_text() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        mine = version("llmb-plugin-deepseek-r1")
    except PackageNotFoundError:
        mine = "unknown"
    return f"llmb-run {mine} (llmb-plugin-deepseek-r1; the submit interface of NVIDIA llmb-run 1.15)"


def cmd_run(args: argparse.Namespace) -> int:
    from .runs import run_command

    return run_command(args, _registry(), os.environ, Path.cwd())


def _split_globals(argv: list[str]) -> tuple[bool, list[str]]:
    """Global options come before the command (llmb-run 1.15): take them off so delegation still works."""
    verbose = False
    while argv and argv[0] in GLOBAL_VERBOSE:
        verbose = True
        argv = argv[1:]
    return verbose, argv


@errors.command
def main(argv: Sequence[str] | None = None) -> int:
    verbose, words = _split_globals(list(sys.argv[1:] if argv is None else argv))
    if words and words[0] == "--version":
        print(version_text())
        return 0
    needs_plugins = not words or words[0] not in ("--help", "-h", "jobs")  # `jobs` asks for them when it must
    parser = build_parser(_registry() if needs_plugins else None, words[0] if words else None)
    from .commands import DELEGATED, split_delegated

    if words and words[0] in DELEGATED:  # the workload parses its own options, in their original order
        args = split_delegated(words)
    else:
        args = parser.parse_args(words)
    if getattr(args, "version", False):
        print(version_text())
        return 0
    args.verbose = bool(getattr(args, "verbose", False) or verbose or getattr(args, "global_verbose", False))
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
