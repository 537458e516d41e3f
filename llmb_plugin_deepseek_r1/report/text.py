"""Parse the report trtllm-bench prints at the end of a run (label generations 0.19 to 1.2).

The parser is a line-at-a-time state machine, so a multi-gigabyte log full of iteration lines is read once with
constant memory: only the report being built is kept. Rows are found by label (both spellings), never by
position, and only inside the section that prints them, so noise interleaved by other ranks is ignored.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from os import PathLike
from typing import Any

from .model import (
    REQUIRED_METRICS,
    REQUIRED_PERCENTILES,
    STREAMING_METRICS,
    ParsedReport,
)

# "[08/12/2025-10:00:00] [TRT-LLM] [I] " or "[TRT-LLM] [RANK 0] [I] " (only the report's first line has it).
_PREFIX_RE = re.compile(
    r"^(?:\[[^\]]*\]\s*)*?\[TRT-LLM\](?:\s*\[(?:RANK \d+|[A-Z]|INFO|WARNING|ERROR|DEBUG|VERBOSE)\])*\s?"
)
_HEADER_RE = re.compile(r"^=\s+([A-Za-z][A-Za-z +]*?)(?:\s*\(([^)]*)\))?\s*$")
_FRAME_RE = re.compile(r"^={20,}\s*$")
_PCT_ROW_RE = re.compile(r"^\[([A-Za-z]+)\]\s+(MINIMUM|MAXIMUM|AVERAGE|MIN|MAX|AVG|P\d+)\s*:\s*(\S+)\s*$")
_DATASET_ROW_RE = re.compile(r"^(MIN|MAX|AVG|P\d+):\s+(\S+)\s+(\S+)\s+(\S+)\s*$")
_MACHINE_RE = re.compile(r"^(?P<name>.*?), memory (?P<mem>[\d.]+|N/A)(?: GB)?, (?P<clk>[\d.]+|N/A)(?: GHz)?$")

_BACKEND = {"PYTORCH BACKEND", "ENGINE DETAILS"}
_PERF = "PERFORMANCE OVERVIEW"
_DATASET = "DATASET DETAILS"
_DECODING = "DECODING STATISTICS"
# Sections that appear once per report: seeing one again means a new report began.
_ONCE = {"MACHINE DETAILS", "REQUEST DETAILS", "WORLD + RUNTIME INFORMATION", _PERF}

_PCT_KEYS = {"MINIMUM": "min", "MIN": "min", "MAXIMUM": "max", "MAX": "max", "AVERAGE": "avg", "AVG": "avg"}
_PCT_TAGS = {
    "TPOT": "tpot_ms",
    "TTFT": "ttft_ms",
    "GTPS": "gtps_tok_s_user",
    "LATENCY": "latency_ms",
    "DT": "draft_tokens",
    "ADT": "accepted_draft_tokens",
    "DAR": "draft_acceptance_rate",
    "AL": "acceptance_length",
}
# "-- ... --" sub-headers announce a percentile block; a block announced but cut short makes a report incomplete.
_BLOCK_HINTS = (
    ("[TPOT]", "tpot_ms"),
    ("[TTFT]", "ttft_ms"),
    ("[GTPS]", "gtps_tok_s_user"),
    ("Request Latency", "latency_ms"),
    ("Accepted Draft Tokens", "accepted_draft_tokens"),
    ("Number of Draft Tokens", "draft_tokens"),
    ("Draft Acceptance Rate", "draft_acceptance_rate"),
    ("Acceptance Length", "acceptance_length"),
)

# (section, normalised label) -> (target attribute, key, kind, label generation or None)
_LABELS: dict[tuple[str, str], tuple[str, str, str, str | None]] = {}


def _label(section: str, target: str, key: str, kind: str, gen: str | None, *labels: str) -> None:
    for text in labels:
        _LABELS[section, " ".join(text.lower().split())] = (target, key, kind, gen)


_label(_PERF, "metrics", "request_throughput_req_s", "float", None, "Request Throughput (req/sec)")
_label(_PERF, "metrics", "total_output_throughput_tok_s", "float", None, "Total Output Throughput (tokens/sec)")
_label(_PERF, "metrics", "total_token_throughput_tok_s", "float", None, "Total Token Throughput (tokens/sec)")
_label(_PERF, "metrics", "total_latency_ms", "float", None, "Total Latency (ms)")
_label(_PERF, "metrics", "avg_request_latency_ms", "float", None, "Average request latency (ms)")
_label(_PERF, "metrics", "avg_ttft_ms", "float", None, "Average time-to-first-token [TTFT] (ms)")
_label(_PERF, "metrics", "avg_tpot_ms", "float", None, "Average time-per-output-token [TPOT] (ms)")
_label(_PERF, "metrics", "per_user_output_throughput_tok_s_user", "float", "new",
       "Per User Output Throughput [w/ ctx] (tps/user)")
_label(_PERF, "metrics", "per_user_output_throughput_tok_s_user", "float", "old",
       "Per User Output Throughput (tokens/sec/user)")
_label(_PERF, "metrics", "per_gpu_output_throughput_tok_s_gpu", "float", "new", "Per GPU Output Throughput (tps/gpu)")
_label(_PERF, "metrics", "per_gpu_output_throughput_tok_s_gpu", "float", "old",
       "Per GPU Output Throughput (tokens/sec/gpu)")
_label(_PERF, "metrics", "per_user_output_speed_tok_s_user", "float", "new", "Per User Output Speed (tps/user)")
_label(_PERF, "metrics", "per_user_output_speed_tok_s_user", "float", "old",
       "Per User Output Speed [1/TPOT] (tokens/sec/user)")
for _section in ("REQUEST DETAILS", _PERF):  # very old builds printed the request rows inside the overview
    _label(_section, "request_details", "num_requests", "int", None, "Number of requests")
    _label(_section, "request_details", "num_concurrent_requests", "float", None, "Number of concurrent requests")
    _label(_section, "request_details", "avg_input_len", "float", None, "Average Input Length (tokens)")
    _label(_section, "request_details", "avg_output_len", "float", None, "Average Output Length (tokens)")
_W = "WORLD + RUNTIME INFORMATION"
_label(_W, "world", "tp", "int", None, "TP Size")
_label(_W, "world", "pp", "int", None, "PP Size")
_label(_W, "world", "ep", "int", None, "EP Size")
_label(_W, "world", "max_batch_size", "int", None, "Max Runtime Batch Size")
_label(_W, "world", "max_num_tokens", "int", None, "Max Runtime Tokens")
_label(_W, "world", "scheduling_policy", "str", None, "Scheduling Policy")
_label(_W, "world", "kv_cache_fraction", "percent", None, "KV Memory Percentage")
for _section in _BACKEND:
    _label(_section, "engine", "model", "str", None, "Model")
    _label(_section, "engine", "model_path", "str", None, "Model Path")
    _label(_section, "engine", "engine_dir", "str", None, "Engine Directory")
    _label(_section, "engine", "trtllm_version", "str", None, "TensorRT-LLM Version", "TensorRT LLM Version")
    _label(_section, "engine", "dtype", "str", None, "Dtype")
    _label(_section, "engine", "kv_cache_dtype", "str", None, "KV Cache Dtype")
    _label(_section, "engine", "quantization", "str", None, "Quantization")
    _label(_section, "engine", "max_input_len", "str", None, "Max Input Length")
    _label(_section, "engine", "max_seq_len", "str", None, "Max Sequence Length")
_label(_DATASET, "dataset", "path", "str", None, "Dataset Path")
_label(_DATASET, "dataset", "num_sequences", "int", None, "Number of Sequences")

_HUMAN = {
    "request_throughput_req_s": "Request Throughput",
    "total_output_throughput_tok_s": "Total Output Throughput",
    "total_token_throughput_tok_s": "Total Token Throughput",
    "total_latency_ms": "Total Latency",
    "avg_request_latency_ms": "Average request latency",
    "per_user_output_throughput_tok_s_user": "Per User Output Throughput",
    "per_gpu_output_throughput_tok_s_gpu": "Per GPU Output Throughput",
    "avg_ttft_ms": "Average time-to-first-token",
    "avg_tpot_ms": "Average time-per-output-token",
    "per_user_output_speed_tok_s_user": "Per User Output Speed",
}


def _convert(value: str, kind: str) -> Any:
    """Convert a printed value; None for "None", "N/A", non-numbers and non-finite numbers."""
    value = value.strip()
    if kind == "str":
        return value if value and value != "None" else None
    try:
        if kind == "percent":
            number = float(value.rstrip("%")) / 100.0
        elif kind == "int":
            number = float(value)
            return int(number) if number.is_integer() else None
        else:
            number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def strip_log_prefix(line: str) -> str:
    """Drop a TensorRT-LLM logger prefix ("[date] [TRT-LLM] [I] ") from the start of a line."""
    if line.startswith("[") and "TRT-LLM]" in line[:80]:
        return _PREFIX_RE.sub("", line, count=1)
    return line


class _Builder:
    """The report being assembled, plus what is needed to judge whether it is complete."""

    def __init__(self, inherited_dataset: dict[str, Any] | None) -> None:
        self.report = ParsedReport(dataset=dict(inherited_dataset or {}))
        self.seen: set[str] = set()
        self.own_dataset = False
        self.announced: set[str] = set()
        self.generations: set[str] = set()

    def finish(self) -> ParsedReport:
        rep = self.report
        rep.label_generation = "new" if "new" in self.generations else ("old" if self.generations else None)
        missing: list[str] = []
        if _PERF not in self.seen:
            missing.append("no PERFORMANCE OVERVIEW section")
        else:
            required = list(REQUIRED_METRICS)
            if rep.label_generation == "new":
                required.append("total_token_throughput_tok_s")
            if rep.streaming:
                required.extend(STREAMING_METRICS)
            missing += [f"{_HUMAN[key]} row" for key in required if key not in rep.metrics]
            expected = set(self.announced) | set(rep.percentiles)
            if rep.label_generation == "new":  # 0.20+ always prints these blocks
                expected.add("latency_ms")
                if rep.streaming:
                    expected |= {"tpot_ms", "ttft_ms", "gtps_tok_s_user"}
            for block in sorted(expected):
                rows = rep.percentiles.get(block, {})
                cut = [key for key in REQUIRED_PERCENTILES if key not in rows]
                if len(cut) == len(REQUIRED_PERCENTILES):
                    missing.append(f"{block} breakdown rows")
                elif cut:
                    missing.append(f"{block} breakdown rows {', '.join(cut)}")
        rep.missing = missing
        rep.complete = not missing
        return rep


class ReportScanner:
    """Feed lines (with or without newlines); `reports()` returns every report seen, oldest first."""

    def __init__(self) -> None:
        self._done: list[ParsedReport] = []
        self._cur: _Builder | None = None
        self._pending_dataset: dict[str, Any] | None = None
        self._section: str | None = None
        self._target: dict[str, Any] | None = None  # dataset dict the DATASET DETAILS rows go to
        self._after_header = False
        self._block: str | None = None  # percentile block announced by the last "--" sub-header

    def _start(self) -> _Builder:
        if self._cur is not None:
            self._done.append(self._cur.finish())
        self._cur = _Builder(self._pending_dataset)
        self._pending_dataset = None
        return self._cur

    def _header(self, name: str, extra: str | None) -> None:
        name = name.upper().strip()
        cur = self._cur
        self._block = None
        if name in _BACKEND:
            cur = self._start()
            cur.report.engine["backend"] = "pytorch" if name == "PYTORCH BACKEND" else "tensorrt"
        elif name in _ONCE:
            if cur is None or name in cur.seen:
                cur = self._start()
        elif name == _DATASET:
            if cur is not None and _PERF in cur.seen and not cur.own_dataset:
                cur.own_dataset = True
                cur.report.dataset = {}
                self._target = cur.report.dataset
            else:  # printed before a run: keep it for the report that follows
                self._pending_dataset = {}
                self._target = self._pending_dataset
        elif name == _DECODING:
            if cur is None:
                self._section = None
                return
            cur.report.decoding_mode = extra.strip() if extra else None
        else:  # an unknown section: ignore its rows
            self._section = None
            return
        if cur is not None:
            cur.seen.add(name)
        self._section = name

    def feed(self, raw: str) -> None:
        if self._section is None:  # outside a section only frames and headers matter: skip log lines fast
            head = raw[:120].lstrip()
            if not head.startswith("=") and "] =" not in head:
                return
        line = strip_log_prefix(raw.rstrip("\r\n")).strip()
        if not line:
            return
        if line[0] == "=":
            if _FRAME_RE.match(line):
                if not self._after_header:  # an opening frame or the end of a block
                    self._section = None
                self._after_header = False
                return
            match = _HEADER_RE.match(line)
            if match:
                self._header(match.group(1), match.group(2))
                self._after_header = True
                return
        self._after_header = False
        section = self._section
        if section is None:
            return
        if section == _DATASET:
            self._dataset_row(line)
            return
        cur = self._cur
        if cur is None:
            return
        if section == "MACHINE DETAILS":
            self._machine_row(cur.report, line)
            return
        if line.startswith("--"):
            self._block = next((key for hint, key in _BLOCK_HINTS if hint in line), None)
            if self._block is not None:
                cur.announced.add(self._block)
            return
        if line[0] == "[" and section in (_PERF, _DECODING):
            match = _PCT_ROW_RE.match(line)
            if match:
                tag, key, value = match.groups()
                number = _convert(value, "float")
                if number is not None:
                    block = _PCT_TAGS.get(tag.upper(), tag.lower())
                    cur.report.percentiles.setdefault(block, {})[_PCT_KEYS.get(key, key.lower())] = number
                return
        label, sep, value = line.partition(":")
        if not sep:
            return
        spec = _LABELS.get((section, " ".join(label.lower().split())))
        if spec is None:
            return
        target, key, kind, gen = spec
        converted = _convert(value, kind)
        if converted is None:
            return
        getattr(cur.report, target)[key] = converted
        if gen:
            cur.generations.add(gen)

    def _dataset_row(self, line: str) -> None:
        target = self._target
        if target is None:
            return
        match = _DATASET_ROW_RE.match(line)
        if match:
            key = _PCT_KEYS.get(match.group(1), match.group(1).lower())
            for column, value in zip(("isl", "osl", "seq_len"), match.groups()[1:]):
                number = _convert(value, "float")
                if number is not None:
                    target.setdefault(column, {})[key] = number
            return
        label, sep, value = line.partition(":")
        spec = _LABELS.get((_DATASET, " ".join(label.lower().split()))) if sep else None
        if spec is not None:
            converted = _convert(value, spec[2])
            if converted is not None:
                target[spec[1]] = converted

    @staticmethod
    def _machine_row(report: ParsedReport, line: str) -> None:
        if "description" in report.machine:
            return
        report.machine["description"] = line
        match = _MACHINE_RE.match(line)
        if match:
            report.machine["name"] = match.group("name")
            for key, group in (("memory_gb", "mem"), ("mem_clock_ghz", "clk")):
                number = _convert(match.group(group), "float")
                if number is not None:
                    report.machine[key] = number

    def reports(self) -> list[ParsedReport]:
        """Every report seen so far (the last one may be incomplete); finishing is idempotent."""
        current = [self._cur.finish()] if self._cur is not None else []
        return self._done + current


def _lines(text_or_lines: str | Iterable[str]) -> Iterable[str]:
    if isinstance(text_or_lines, str):
        return text_or_lines.splitlines()
    return text_or_lines


def parse_all_reports(text_or_lines: str | Iterable[str]) -> list[ParsedReport]:
    """All reports in a log (several use cases in one job print one each), oldest first."""
    scanner = ReportScanner()
    for line in _lines(text_or_lines):
        scanner.feed(line)
    return scanner.reports()


def parse_report(text_or_lines: str | Iterable[str]) -> ParsedReport | None:
    """The last report in the text, complete or not; None when no report section appears at all."""
    reports = parse_all_reports(text_or_lines)
    return reports[-1] if reports else None


def parse_report_file(path: str | PathLike[str]) -> ParsedReport | None:
    """Like parse_report, streaming the file line by line (undecodable bytes are replaced, not fatal)."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        return parse_report(handle)
