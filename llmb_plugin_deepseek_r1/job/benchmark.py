"""Run the benchmark process: output streamed to files, a wall-clock limit, and hang detection.

trtllm-bench hangs after one rank dies ("Child job N terminated normally, but 1 process returned a non-zero exit
code"): only killing the whole process group ends it, so the runner watches the output files for that line and
kills the group after a grace period, or at the deadline, whichever comes first.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping

RANK_DIED = re.compile(rb"Child job \d+ terminated normally, but \d+ process(es)? returned\s+a non-zero exit code")
POLL_S = 0.5
TERM_GRACE_S = 10.0


class JobTerminated(BaseException):
    """SIGTERM (scancel, a killed allocation) or SIGINT arrived: the benchmark's process group is killed, the
    result is written as FAILED (cancelled), and the job ends (raised by the entry point's handler, job.entry)."""


class TimeLimitReached(JobTerminated):
    """Slurm's warning that the allocation's time limit is near (submitit's ``--signal=USR2@<delay>``) arrived
    before the job body's own deadline: handled as a termination, but the result says ``timeout``."""


@dataclass(frozen=True)
class BenchOutcome:
    returncode: int | None
    seconds: float
    timed_out: bool
    killed_after_rank_died: bool

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class _Tail:
    """Reads what was appended to a file since the last call (bounded memory: only new bytes)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.carry = b""

    def found(self, pattern: re.Pattern[bytes]) -> bool:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                chunk = handle.read(4 << 20)
        except OSError:
            return False
        self.offset += len(chunk)
        data = self.carry + chunk
        self.carry = data[-512:]
        return bool(pattern.search(data))


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group (srun forwards it to its tasks), then SIGKILL what is left."""
    for sig, grace in ((signal.SIGTERM, TERM_GRACE_S), (signal.SIGKILL, TERM_GRACE_S)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def run_benchmark(argv: list[str], stdout: Path, stderr: Path, env: Mapping[str, str], *, timeout_s: float,
                  hang_grace_s: float) -> BenchOutcome:
    """Run ``argv`` in its own session with stdout/stderr appended to the given files (never held in memory)."""
    start = time.monotonic()
    deadline = start + max(1.0, timeout_s)
    rank_died_at: float | None = None
    tails = [_Tail(stdout), _Tail(stderr)]
    with open(stdout, "ab") as out, open(stderr, "ab") as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=dict(env),
                                start_new_session=True)
        try:
            while True:
                try:
                    proc.wait(timeout=POLL_S)
                    break
                except subprocess.TimeoutExpired:
                    pass
                now = time.monotonic()
                if rank_died_at is None and any(t.found(RANK_DIED) for t in tails):
                    rank_died_at = now
                if now >= deadline:
                    _kill_group(proc)
                    return BenchOutcome(proc.returncode, now - start, True, False)
                if rank_died_at is not None and now - rank_died_at >= hang_grace_s:
                    _kill_group(proc)
                    return BenchOutcome(proc.returncode, now - start, False, True)
        except BaseException:
            _kill_group(proc)
            raise
    # The process ended by itself; its children may live on in the group (a hung rank): end them too.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    return BenchOutcome(proc.returncode, time.monotonic() - start, False, False)
