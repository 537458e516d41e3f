"""`python -m llmb_plugin_deepseek_r1 parse-log FILE [--json]`: parse any trtllm-bench output file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from llmb_plugin_deepseek_r1.host import errors
from llmb_plugin_deepseek_r1.host.errors import BenchmarkFailed, ValidationError
from . import METRIC_KEYS, LogScan, scan_logs
from .generations import BY_NAME


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def format_summary(scan: LogScan, name: str) -> str:
    """A readable summary of a scan, for people reading a job's result."""
    rep, fail = scan.report, scan.failure
    lines: list[str] = []
    if rep is None:
        lines.append(f"{name}: no trtllm-bench report found (no overview section of any known generation)")
    else:
        state = "complete" if rep.complete else "INCOMPLETE: " + "; ".join(rep.missing)
        lines.append(f"{name}: report {state} ({describe_generation(rep.generation, rep.source)}, "
                     f"streaming {'on' if rep.streaming else 'off'})")
        if rep.selection:
            lines.append(f"  selected: {rep.selection}")
        eng = rep.engine
        if eng:
            lines.append(
                f"  engine: {eng.get('model', '?')} at {eng.get('model_path', '?')}, TensorRT-LLM "
                f"{eng.get('trtllm_version', '?')}, dtype {eng.get('dtype', '?')}, kv {eng.get('kv_cache_dtype', '?')},"
                f" quantization {eng.get('quantization', '?')}"
            )
        if rep.machine:
            lines.append(f"  machine: {rep.machine.get('description') or rep.machine.get('name')}")
        if rep.world:
            lines.append("  world: " + ", ".join(f"{k} {_fmt(v)}" for k, v in rep.world.items()))
        if rep.request_details:
            lines.append("  requests: " + ", ".join(f"{k} {_fmt(v)}" for k, v in rep.request_details.items()))
        decoding = rep.decoding_summary()
        if decoding:
            lines.append("  speculative decoding: " + ", ".join(f"{k} {_fmt(v)}" for k, v in decoding.items()))
        if rep.metrics:
            lines.append("  metrics (from the label printed):")
            lines += [f"    {key:<40} {_fmt(rep.metrics[key]):<16} {rep.metric_labels.get(key, '')}".rstrip()
                      for key in METRIC_KEYS if key in rep.metrics]
        for block, row in rep.percentiles.items():
            lines.append(f"  {block}: " + "  ".join(f"{k} {_fmt(v)}" for k, v in row.items()))
    if fail is not None:
        kind = f" ({fail.detail})" if fail.detail else ""
        where = f" line {fail.lineno}" if fail.lineno else ""
        who = "".join(f", {k} {v}" for k, v in (("rank", fail.rank), ("node", fail.node)) if v is not None)
        lines.append(f"  failure: {fail.category}{kind}{who} at{where}: {fail.line}")
        if fail.remedy:
            lines.append(f"  remedy: {fail.remedy}")
    return "\n".join(lines)


def describe_generation(name: str | None, source: str) -> str:
    """'generation 0.16 (TensorRT-LLM 0.16 to 0.17, trtllm-bench throughput)' for people reading a summary."""
    gen = BY_NAME.get(name or "")
    if gen is None:
        return "generation not recognised" if source == "text" else f"generation not recognised ({source})"
    via = " --report_json" if source == "report_json" else ""
    return f"generation {gen.name} (TensorRT-LLM {gen.versions}, trtllm-bench {gen.subcommand}{via})"


@errors.command
def main_parse_log(argv: list[str] | None = None) -> int:
    """`parse-log FILE [FILE...] [--json]`: 0 when a complete report was found, 4 when none, 1 for a bad file."""
    parser = argparse.ArgumentParser(
        prog="python -m llmb_plugin_deepseek_r1 parse-log",
        description="Parse trtllm-bench output (.out/.err or a --report_json file) and classify failures.",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="trtllm-bench stdout/stderr or --report_json file")
    parser.add_argument("--json", action="store_true", help="print the parsed report and failure as JSON")
    args = parser.parse_args(argv)
    for name in args.files:
        if not Path(name).exists():
            raise ValidationError(f"log file not found: {name}")
    try:
        scan = scan_logs(*args.files)
    except (OSError, ValueError) as exc:
        raise ValidationError(str(exc)) from None
    label = ", ".join(args.files)
    if args.json:
        print(json.dumps({"files": args.files, **scan.to_dict()}, indent=2, sort_keys=False))
    else:
        print(format_summary(scan, label))
    if scan.report is None or not scan.report.complete:
        what = "; ".join(scan.report.missing) if scan.report else "no overview section of any known generation"
        raise BenchmarkFailed(f"no complete trtllm-bench report in {label}: {what}")
    return 0

