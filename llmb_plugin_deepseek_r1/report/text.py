"""Parse the report trtllm-bench prints at the end of a run (every generation in generations.GENERATIONS).

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

from .generations import (
    BACKENDS,
    BREAKDOWNS,
    BY_NAME,
    DATASET,
    DECODING,
    GENERAL,
    GENERATIONS,
    LATENCY,
    MACHINE,
    ONCE,
    OVERVIEWS,
    PERF,
    ROWS,
    STATS,
    STREAM,
    THROUGHPUT,
    Generation,
    normalise,
)
from .model import REQUIRED_PERCENTILES, ParsedReport

# "[08/12/2025-10:00:00] [TRT-LLM] [I] " or "[TRT-LLM] [RANK 0] [I] " (only the report's first line has it).
_PREFIX_RE = re.compile(
    r"^(?:\[[^\]]*\]\s*)*?\[TRT-LLM\](?:\s*\[(?:RANK \d+|[A-Z]|INFO|WARNING|ERROR|DEBUG|VERBOSE)\])*\s?"
)
_HEADER_RE = re.compile(r"^=\s+([A-Za-z][A-Za-z +]*?)(?:\s*\(([^)]*)\))?\s*$")
_FRAME_RE = re.compile(r"^={20,}\s*$")
_PCT_ROW_RE = re.compile(r"^\[([A-Za-z]+)\]\s+(MINIMUM|MAXIMUM|AVERAGE|MIN|MAX|AVG|P\d+)\s*:\s*(\S+)\s*$")
_DATASET_ROW_RE = re.compile(r"^(MIN|MAX|AVG|P\d+):\s+(\S+)\s+(\S+)\s+(\S+)\s*$")
_BREAKDOWN_ROW_RE = re.compile(r"^(MIN|MAX|AVG|P\d+)(?:\s*\(ms\))?:\s*(\S+)\s*$")
_MACHINE_RE = re.compile(r"^(?P<name>.*?), memory (?P<mem>[\d.]+|N/A)(?: GB)?, (?P<clk>[\d.]+|N/A)(?: GHz)?$")

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
_PCT_SECTIONS = (PERF, DECODING)
# Without a marker row (a report cut early), judge completeness as the oldest generation printing that overview.
_FALLBACK = ((PERF, "0.19"), (STATS, "0.12"), (GENERAL, "latency-0.16"), (THROUGHPUT, "latency-0.16"),
             (LATENCY, "latency-0.16"))
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
        elif kind == "seconds":
            number = float(value) * 1000.0
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
        self.markers: set[tuple[str, str | None]] = set()

    def generation(self) -> Generation | None:
        for gen in GENERATIONS:
            if any(marker in self.markers or (marker[1] is None and marker[0] in self.seen)
                   for marker in gen.markers):
                return gen
        return None

    def finish(self) -> ParsedReport:
        rep = self.report
        gen = self.generation()
        rep.generation = gen.name if gen else None
        rep.subcommand = gen.subcommand if gen else None
        rep.label_generation = gen.label_generation if gen else None
        if gen is None:  # cut before any row that tells generations apart: judge as the oldest that prints it
            gen = next((BY_NAME[name] for section, name in _FALLBACK if section in self.seen), None)
        missing: list[str] = []
        if gen is None:
            missing.append("no overview section (PERFORMANCE OVERVIEW, STATISTICS or LATENCY OVERVIEW)")
        else:
            required = list(gen.required)
            streaming = any(key in rep.metrics for key in gen.streaming) or STREAM in self.seen or (
                "ttft_ms" in rep.percentiles)
            if streaming:
                required += [key for key in gen.streaming if key not in required]
            missing += [f"{_HUMAN[key]} row" for key in required if key not in rep.metrics]
            expected = set(self.announced) | set(rep.percentiles) | set(gen.blocks)
            if streaming:
                expected |= set(gen.streaming_blocks)
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
        if name in BACKENDS:
            cur = self._start()
            cur.report.engine["backend"] = "pytorch" if name == "PYTORCH BACKEND" else "tensorrt"
        elif name in ONCE:
            if cur is None or name in cur.seen:
                cur = self._start()
        elif name == DATASET:
            if cur is not None and cur.seen & OVERVIEWS and not cur.own_dataset:
                cur.own_dataset = True
                cur.report.dataset = {}
                self._target = cur.report.dataset
            else:  # printed before a run: keep it for the report that follows
                self._pending_dataset = {}
                self._target = self._pending_dataset
        elif name in (DECODING, STREAM) or name in BREAKDOWNS:
            if cur is None:
                self._section = None
                return
            if name == DECODING:
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
        if section == DATASET:
            self._dataset_row(line)
            return
        cur = self._cur
        if cur is None:
            return
        if section == MACHINE:
            self._machine_row(cur.report, line)
            return
        if section in BREAKDOWNS:
            self._breakdown_row(cur.report, section, line)
            return
        if line.startswith("--"):
            self._block = next((key for hint, key in _BLOCK_HINTS if hint in line), None)
            if self._block is not None:
                cur.announced.add(self._block)
            return
        if line[0] == "[" and section in _PCT_SECTIONS:
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
        wanted = normalise(label)
        row = ROWS.get((section, wanted))
        if row is None:
            return
        converted = _convert(value, row.kind)
        if converted is None:
            return
        getattr(cur.report, row.target)[row.key] = converted
        cur.markers.add((section, row.label))
        if row.target == "metrics":
            cur.report.metric_labels[row.key] = f"{section}: {label.strip()}"

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
        row = ROWS.get((DATASET, normalise(label))) if sep else None
        if row is not None:
            converted = _convert(value, row.kind)
            if converted is not None:
                target[row.key] = converted

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

    @staticmethod
    def _breakdown_row(report: ParsedReport, section: str, line: str) -> None:
        match = _BREAKDOWN_ROW_RE.match(line)
        number = _convert(match.group(2), "float") if match else None
        if match is None or number is None:
            return
        block, relabel = BREAKDOWNS[section]
        printed = match.group(1).upper()
        report.percentiles.setdefault(block, {})[relabel.get(printed, _PCT_KEYS.get(printed, printed.lower()))] = (
            number)

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
