"""`llmb-run results` and `llmb-run archive`: argument parsing and output only.

The work lives in results_load (files, references, --since), results_table (pandas table, deltas, repeats),
results_plot (Pareto plot) and results_archive (tar.gz); pandas and matplotlib are imported only when used, so
`llmb-run --help` stays fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llmb_plugin_deepseek_r1 import WORKLOAD_KEY
from llmb_plugin_deepseek_r1.host import errors
from llmb_plugin_deepseek_r1.host.contract import HostContext
from llmb_plugin_deepseek_r1.paths import experiments_dir
from .load import ResultsError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="llmb-run results", description="One row per run from the result JSON files, compared with "
                "NVIDIA's published references and with the previous run of the same settings.")
    p.add_argument("--json", action="store_true", help="print the rows as a JSON list instead of a table")
    p.add_argument("--csv", type=Path, metavar="FILE", help="also write the rows to FILE as CSV")
    p.add_argument("--plot", type=Path, metavar="FILE.png", help="also draw output tok/s/GPU against tok/s/user "
                   "per use case, Pareto frontier and references marked (needs the [plot] extra)")
    p.add_argument("--since", metavar="WHEN", help="only runs finished since WHEN: 2026-11-20, 2026-11-20T08:00, "
                   "or an age such as 30m, 12h, 7d, 2w")
    p.add_argument("--valid-only", action="store_true", help="hide FAILED and INVALID runs")
    p.add_argument("--runs", action="store_true", help="one row per run (default: repeats of identical settings "
                   "with several VALID runs become one row with n, mean and spread)")
    p.add_argument("--use-case", action="append", default=[], metavar="NAME", help="only this use case "
                   "(repeatable)")
    p.add_argument("--dir", type=Path, metavar="DIR", help="read another workload folder or experiments folder "
                   "(for example an unpacked archive) instead of $LLMB_INSTALL/workloads/" + WORKLOAD_KEY)
    p.add_argument("--force", action="store_true", help="replace an existing --csv or --plot file")
    return p


def _experiments_dir(given: Path | None, context: HostContext | None) -> Path:
    """--dir (a workload folder or its experiments folder), else the context's workload folder."""
    if given is not None:
        given = given.expanduser()
        if (given / "experiments").is_dir():
            return given / "experiments"
        if not given.is_dir():
            raise ResultsError(f"--dir {given}: no such folder; give a workload folder or its experiments folder")
        return given
    return experiments_dir(_workload_dir(context))


def _workload_dir(context: HostContext | None) -> Path:
    from llmb_plugin_deepseek_r1.paths import workload_paths

    if context is None:
        from llmb_plugin_deepseek_r1.host.cluster import resolve_context

        context = resolve_context(os.environ, Path.cwd())
    return workload_paths(context.install_dir, context.env).workload_dir


def _references() -> list[dict[str, Any]]:
    from llmb_plugin_deepseek_r1.recipe import load_metadata
    from .load import validate_references

    return validate_references(load_metadata().get("references"))


def _write_csv(path: Path, text: str, force: bool) -> None:
    from llmb_plugin_deepseek_r1.host.records import write_atomic

    if path.exists() and not force:
        raise ResultsError(f"--csv {path}: the file exists; choose another name or add --force to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda handle: handle.write(text.encode()), overwrite=True)


def run_results(args: argparse.Namespace, context: HostContext | None) -> int:
    from .load import load_runs, parse_since
    from .table import (
        annotate,
        build_table,
        csv_text,
        display_table,
        records,
        select,
    )

    since = parse_since(args.since) if args.since else None
    if args.plot is not None and args.plot.exists() and not args.force:
        raise ResultsError(f"--plot {args.plot}: the file exists; choose another name or add --force to replace it")
    experiments = _experiments_dir(args.dir, context)
    references = _references()
    loaded = load_runs(experiments)
    for path, why in loaded.skipped:
        print(f"warning: skipped {path}: {why}", file=sys.stderr)
    runs = select(annotate(loaded.runs, references), since=since, valid_only=args.valid_only,
                  use_cases=args.use_case)
    table = build_table(runs, individual=args.runs)
    if args.json:
        print(json.dumps(records(table) if len(table) else [], indent=2, default=str))
    elif not len(table):
        print(f"No results under {experiments}" + (" matching the filters" if loaded.runs else ""))
    else:
        text, notes = display_table(table)
        print(text)
        if notes:
            print()
            print("\n".join(notes))
    if args.csv is not None:
        _write_csv(args.csv, csv_text(table) if len(table) else "", args.force)
        print(f"wrote {len(table)} rows to {args.csv}", file=sys.stderr)
    if args.plot is not None:
        from .plot import draw_plot, plot_data

        groups = plot_data(records(table) if len(table) else [], references)
        draw_plot(groups, args.plot, overwrite=args.force)
        points = sum(len(g["points"]) for g in groups)
        print(f"wrote {args.plot}: {points} points in {len(groups)} use case(s)", file=sys.stderr)
    return 0


@errors.command
def main(argv: Sequence[str] | None = None, context: HostContext | None = None) -> int:
    """`llmb-run results [OPTIONS]` (exit codes: README's table)."""
    return run_results(build_parser().parse_args(list(argv or [])), context)


def build_archive_parser() -> argparse.ArgumentParser:
    from .archive import DEFAULT_MAX_FILE_BYTES

    p = argparse.ArgumentParser(prog="llmb-run archive", description="Pack the workload's experiments (logs, result JSON, YAML, "
                "job records; no weights, datasets or submitit pickles) into one .tar.gz to share.")
    p.add_argument("--output", "-o", type=Path, metavar="FILE", help="archive to write (default: $LLMB_WORKLOAD/"
                   "llmb-results-<date>.tar.gz, numbered when taken; an existing FILE is never replaced)")
    p.add_argument("--max-file-size", default=f"{DEFAULT_MAX_FILE_BYTES // 1024 ** 2}M", metavar="SIZE",
                   help="leave out files bigger than SIZE (default: %(default)s)")
    p.add_argument("--dir", type=Path, metavar="DIR", help="the workload folder to pack (default: "
                   "$LLMB_INSTALL/workloads/" + WORKLOAD_KEY + ")")
    return p


def run_archive(args: argparse.Namespace, context: HostContext | None) -> int:
    from .archive import create_archive, format_summary, parse_size

    limit = parse_size(args.max_file_size)
    workload_dir = args.dir.expanduser() if args.dir is not None else _workload_dir(context)
    summary = create_archive(workload_dir, args.output.expanduser() if args.output else None, max_file_bytes=limit)
    print(format_summary(summary))
    return 0


@errors.command
def main_archive(argv: Sequence[str] | None = None, context: HostContext | None = None) -> int:
    """`llmb-run archive [--output FILE] [--max-file-size SIZE]` (exit codes: README's table)."""
    return run_archive(build_archive_parser().parse_args(list(argv or [])), context)
