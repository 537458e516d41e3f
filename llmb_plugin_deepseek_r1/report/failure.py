"""Classify why a trtllm-bench run failed, from its stdout/stderr text.

Signatures come from TensorRT-LLM 0.19-1.2 (see the reference notes). Several usually appear together: a rank that
runs out of memory also makes the executor print "Executor worker returned error", mpirun print "Child job N
terminated normally, but 1 process returned a non-zero exit code" and the benchmark print "Error during
benchmarking:". The root cause wins by category rank (FAILURE_CATEGORIES), and within a category the first line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .model import FAILURE_CATEGORIES, OOM_REMEDY, Failure

# (category, detail, pattern); checked in this order on every line, the first match of a line counts.
_SIGNATURES: tuple[tuple[str, str | None, re.Pattern[str]], ...] = (
    ("oom", "startup", re.compile(r"Executor creation failed due to insufficient GPU memory")),
    ("oom", "runtime", re.compile(r"CUDA out of memory|torch\.OutOfMemoryError|CUDA error: out of memory"
                                  r"|torch\.cuda\.OutOfMemoryError")),
    ("nccl", None, re.compile(r"Executor creation failed with NCCL error|NCCL error"
                              r"|nccl(?:InternalError|SystemError|UnhandledCudaError|RemoteError|InvalidUsage)")),
    ("dataset_error", None, re.compile(r"KeyError: '(?:task_id|output_tokens)'|JSONDecodeError"
                                       r"|validation errors? for InferenceRequest")),
    ("launch_error", None, re.compile(r"All nodes which are allocated for this job are already filled"
                                      r"|Model is a file or directory, please provide a model name"
                                      r"|world_size must equal to pp_size \* cp_size \* tp_size")),
    ("benchmark_error", None, re.compile(r"Error during benchmarking:")),
    ("rank_crash", None, re.compile(r"(?:Child|Primary) job\s+\d*\s*terminated normally, but \d+ process(?:es)?"
                                    r" returned")),
    ("rank_crash", "srun", re.compile(r"srun: error: \S+: tasks? [\d,\-]+: (?:Exited with exit code [1-9]"
                                      r"|Segmentation fault|Aborted|Bus error)")),
    ("unknown", "worker", re.compile(r"Executor worker returned error")),
)
_RANK = {name: index for index, name in enumerate(FAILURE_CATEGORIES)}
# Every signature contains one of these; plain substring tests keep multi-GB iteration logs cheap to scan.
_QUICK = ("rror", "memory", "NCCL", "nccl", "allocated", "Model is a", "terminated normally", "world_size")
# srun's line for a task that ended badly: the node, the task ids (Slurm ranks) and how it ended.
SRUN_TASK_FAILED = re.compile(r"srun: error: (?P<node>\S+): tasks? (?P<ranks>[\d,\-]+): (?P<how>[^\r\n]+)")
# Consequences of another rank's failure (srun --kill-on-bad-exit ends the rest), never the cause.
_CONSEQUENCES = ("Killed", "Terminated")
_MAX_LINE = 500


class FailureScanner:
    """Feed lines one at a time; `result()` is the most specific failure seen so far, or None."""

    def __init__(self) -> None:
        self._best: Failure | None = None
        self._lineno = 0

    def feed(self, line: str) -> None:
        self._lineno += 1
        for needle in _QUICK:
            if needle in line:
                break
        else:
            return
        for category, detail, pattern in _SIGNATURES:
            if pattern.search(line):
                best = self._best
                if best is None or _RANK[category] < _RANK[best.category]:
                    text = line.strip()[:_MAX_LINE]
                    remedy = OOM_REMEDY if category == "oom" else None
                    self._best = Failure(category, text, self._lineno, detail, remedy)
                return

    def result(self) -> Failure | None:
        return self._best


def classify_failure(texts: Iterable[str]) -> Failure | None:
    """The root-cause failure in the given texts (each item a line or a whole multi-line text), or None.

    Returns None when no failure signature appears; a report can still be missing (check the parser). lineno
    counts lines across all items in order.
    """
    scanner = FailureScanner()
    for text in texts:
        if "\n" in text:
            for line in text.splitlines():
                scanner.feed(line)
        else:
            scanner.feed(text)
    return scanner.result()


def failed_rank(texts: Iterable[str]) -> dict[str, object] | None:
    """The node and rank that failed first, from srun's "srun: error: NODE: task N: HOW" lines. Tasks srun killed
    or terminated (the consequence of another rank's failure, or of the time limit) never count; None when no
    task ended on its own."""
    for text in texts:
        for match in SRUN_TASK_FAILED.finditer(text):
            how = match["how"].strip()
            if how.startswith(_CONSEQUENCES):
                continue
            ranks = match["ranks"]
            return {"node": match["node"], "rank": int(re.split(r"[,\-]", ranks)[0]), "ranks": ranks, "how": how,
                    "line": match[0].strip()}
    return None
