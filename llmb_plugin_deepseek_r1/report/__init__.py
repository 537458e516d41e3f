"""trtllm-bench output: report parsing, failure classification, and the `parse-log` command.

Users used to read the PERFORMANCE OVERVIEW by eye; this turns a job's .out/.err (or a --report_json file) into
numbers with stable names, says whether the report is complete, and names the failure when it is not.
The parsing lives in text / json_report / failure; this module is the public face, ``cli`` the `parse-log` command.
"""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

from .failure import FailureScanner
from .json_report import parse_report_json
from .model import METRIC_KEYS, OOM_REMEDY, Failure, ParsedReport
from .text import ReportScanner

# The face the job body and parse-log use; the parsers themselves live in text, json_report and failure.
__all__ = ["METRIC_KEYS", "OOM_REMEDY", "LogScan", "parse_report_json", "scan_logs"]


@dataclass
class LogScan:
    """What one read of a job's output files found."""

    report: ParsedReport | None
    failure: Failure | None
    last_line: str | None = None  # the last non-empty output line: the evidence when nothing else explains a failure

    def to_dict(self) -> dict[str, Any]:
        return {
            "complete": bool(self.report and self.report.complete),
            "report": self.report.to_dict() if self.report else None,
            "failure": self.failure.to_dict() if self.failure else None,
        }


def _looks_like_json(path: Path) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(64).lstrip()
    return head.startswith(b"{")


def scan_logs(*paths: str | PathLike[str]) -> LogScan:
    """Read each file once (stdout and stderr of a job, in any order): the report and the root-cause failure.

    The report is the last complete one found, else the last one found. A file starting with "{" is read as a
    --report_json file. Raises FileNotFoundError / IsADirectoryError / ValueError for unreadable input.
    """
    reports: list[ParsedReport] = []
    failures = FailureScanner()
    for path in map(Path, paths):
        if path.is_dir():
            raise IsADirectoryError(f"{path} is a directory, expected a trtllm-bench output file")
        if _looks_like_json(path):
            reports.append(parse_report_json(path))
            continue
        scanner = ReportScanner()
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                scanner.feed(line)
                failures.feed(line)
        reports.extend(scanner.reports())
    complete = [rep for rep in reports if rep.complete]
    best = complete[-1] if complete else (reports[-1] if reports else None)
    if best is not None and len(reports) > 1:
        which = "the last complete one" if best.complete else "none is complete: the last one"
        index = next(i for i, rep in enumerate(reports) if rep is best) + 1
        best.selection = f"report {index} of {len(reports)} in the log ({which})"
    return LogScan(best, failures.result(), failures.last_line)
