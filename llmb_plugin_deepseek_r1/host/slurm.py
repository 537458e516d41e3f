"""The one Slurm layer: every sbatch, squeue, sacct, scontrol and scancel call of the package goes through here.

Why one place: each call has a timeout (a hung slurmctld must not hang llmb-run), an explicit environment
(no swapping of ``os.environ``), and one order for reading a job's state: sacct (accounting, also for ended
jobs), then squeue (pending/running jobs where accounting is missing or slow); the caller adds the job's own
status file last (:func:`llmb_plugin_deepseek_r1.host.tracking.job_state`).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Iterator, Mapping, Sequence

from .errors import SlurmError

QUERY_TIMEOUT_S = 30.0   # squeue, sacct, scontrol: answers in well under a second on a healthy controller
SUBMIT_TIMEOUT_S = 120.0  # sbatch may wait for a busy controller
TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED",
                      "BOOT_FAIL", "DEADLINE", "REVOKED"})


def available(env: Mapping[str, str]) -> bool:
    """True when sbatch is on the PATH of ``env``."""
    return shutil.which("sbatch", path=env.get("PATH")) is not None


def run(argv: Sequence[str], *, timeout_s: float = QUERY_TIMEOUT_S,
        env: Mapping[str, str] | None = None) -> str:
    """stdout of a Slurm client command; SlurmError (one line) when it cannot run, times out or fails."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout_s, check=False,
                              env=None if env is None else dict(env))
    except FileNotFoundError:
        raise SlurmError(f"{argv[0]} is not on PATH: is this a Slurm login node?") from None
    except OSError as exc:
        raise SlurmError(f"{argv[0]} could not run: {exc}") from None
    except subprocess.TimeoutExpired:
        raise SlurmError(f"{argv[0]} did not answer within {timeout_s:g} s") from None
    if done.returncode != 0:
        why = (done.stderr.strip() or done.stdout.strip() or f"exit code {done.returncode}").splitlines()[-1]
        raise SlurmError(f"{' '.join(argv[:2])} failed: {why}")
    return done.stdout


class PendingQuery:
    """A read-only query started now and read later: the Slurm client waits on slurmctld/slurmdbd while the
    caller works, without a thread. :meth:`output` is :func:`query`'s answer (None when it could not run, failed
    or timed out), within the same deadline."""

    def __init__(self, argv: Sequence[str], *, timeout_s: float = QUERY_TIMEOUT_S) -> None:
        self._deadline = time.monotonic() + timeout_s
        try:
            self._proc: subprocess.Popen[str] | None = subprocess.Popen(
                list(argv), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        except OSError:
            self._proc = None

    def done(self) -> bool:
        """True once the client has exited (one whose answer fills the pipe waits to be read: not done)."""
        return self._proc is None or self._proc.poll() is not None

    def output(self) -> str | None:
        if self._proc is None:
            return None
        try:
            out, _ = self._proc.communicate(timeout=max(0.0, self._deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.communicate()
            return None
        return out if self._proc.returncode == 0 else None


def query(argv: Sequence[str], *, timeout_s: float = QUERY_TIMEOUT_S) -> str | None:
    """Like :func:`run`, for read-only queries whose absence the caller can live with: None instead of an error
    (a :class:`PendingQuery` read at once)."""
    return PendingQuery(argv, timeout_s=timeout_s).output()


def sbatch_version(env: Mapping[str, str]) -> str | None:
    """`sbatch --version` ('slurm 22.05.8'), None when it cannot tell."""
    try:
        return run(["sbatch", "--version"], env=env).strip() or None
    except SlurmError:
        return None


def node_list(job_id: str) -> str | None:
    """A job's node list in Slurm's compact form (n[1-2]): squeue while it runs, else sacct; None if unknown."""
    out = query(["squeue", "-h", "-j", job_id, "-o", "%N"])
    if out and out.strip():
        return out.split()[0]
    out = query(["sacct", "-n", "-X", "-P", "-j", job_id, "-o", "JobID,NodeList"])
    for line in (out or "").splitlines():
        jid, _, nodes = line.partition("|")
        if jid == job_id and nodes and nodes != "None assigned":
            return nodes
    return None


def sbatch(script: Path, env: Mapping[str, str]) -> str:
    """Submit a batch script with exactly ``env`` as sbatch's (and so the job's) environment; sbatch's stdout."""
    return run(["sbatch", str(script)], timeout_s=SUBMIT_TIMEOUT_S, env=env)


def sacct_state(job_id: str) -> str | None:
    out = query(["sacct", "-n", "-X", "-P", "-j", job_id, "-o", "JobID,State"])
    for line in (out or "").splitlines():
        jid, _, state = line.partition("|")
        if jid == job_id and state:
            return state.split()[0].rstrip("+")
    return None


def squeue_state(job_id: str) -> str | None:
    out = query(["squeue", "-h", "-j", job_id, "-o", "%T"])
    words = (out or "").split()
    return words[0] if words else None


def job_state(job_id: str) -> tuple[str, str] | None:
    """(state, source) from sacct, else squeue; None when Slurm knows nothing of the job."""
    for source, probe in (("sacct", sacct_state), ("squeue", squeue_state)):
        state = probe(job_id)
        if state:
            return state, source
    return None


_SLURM_ID = re.compile(r"^\d+(?:_\d+)?(?:\+\d+)?$")  # 123, 123_4 (array task), 123+1 (heterogeneous job)
#: Characters of job ids per sacct/squeue call when states are asked in bulk (Linux caps one argument at 128 KiB).
BULK_ID_CHARS = 100_000


def _id_batches(job_ids: Sequence[str]) -> Iterator[str]:
    batch: list[str] = []
    size = 0
    for job_id in job_ids:
        if batch and size + len(job_id) + 1 > BULK_ID_CHARS:
            yield ",".join(batch)
            batch, size = [], 0
        batch.append(job_id)
        size += len(job_id) + 1
    if batch:
        yield ",".join(batch)


def _rows(text: str | None, rows: dict[str, list[str]]) -> None:
    """Add {job id: [the other columns]} of a query's ``JobID|...`` lines to ``rows`` (the first line of an id
    wins)."""
    for line in (text or "").splitlines():
        jid, *columns = line.strip().split("|")
        if columns and columns[0] and jid not in rows:
            rows[jid] = columns


def _sacct_argv(ids: str) -> list[str]:
    return ["sacct", "-n", "-X", "-P", "-j", ids, "-o", "JobID,State,NodeList"]


def _squeue_argv(ids: str) -> list[str]:
    return ["squeue", "-h", "-r", "-j", ids, "-o", "%i|%T"]


class BulkStates:
    """:func:`job_states_and_nodes`, asked now and answered by :meth:`result`: the first batch's sacct and squeue
    start at once, side by side (sacct waits on slurmdbd), while the caller reads its records; further batches
    (over 100 KB of ids) run one pair at a time, so one listing never floods the controller."""

    def __init__(self, job_ids: Sequence[str]) -> None:
        ids = [job_id for job_id in job_ids if _SLURM_ID.match(job_id)]  # one bad id fails a whole query
        self._batches = list(_id_batches(ids))
        self._first = [PendingQuery(_sacct_argv(self._batches[0])), PendingQuery(_squeue_argv(self._batches[0]))] \
            if self._batches else []

    def done(self) -> bool:
        return all(pending.done() for pending in self._first)

    def result(self) -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
        from_sacct: dict[str, list[str]] = {}
        from_squeue: dict[str, list[str]] = {}
        for number, ids in enumerate(self._batches):
            sacct, squeue = self._first if number == 0 else (PendingQuery(_sacct_argv(ids)),
                                                             PendingQuery(_squeue_argv(ids)))
            _rows(sacct.output(), from_sacct)
            _rows(squeue.output(), from_squeue)
        states = {job_id: (columns[0].split()[0], "squeue") for job_id, columns in from_squeue.items()}
        states.update((job_id, (columns[0].split()[0].rstrip("+"), "sacct")) for job_id, columns in from_sacct.items())
        nodes = {job_id: columns[1] for job_id, columns in from_sacct.items()
                 if len(columns) > 1 and columns[1] and columns[1] != "None assigned"}
        return states, nodes


def job_states_and_nodes(job_ids: Sequence[str]) -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
    """({job id: (state, source)} as :func:`job_state` would say, {job id: node list} as :func:`node_lists`) for
    every id Slurm knows, from one sacct and one squeue call per 100 KB of ids (run at the same time: sacct waits
    on slurmdbd) instead of one or two per job; squeue's state counts only where sacct has none. Array tasks are
    asked and answered as ``<array>_<task>``. :class:`BulkStates` asks now and answers later."""
    return BulkStates(job_ids).result()


def job_states(job_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    """{job id: (state, source)}: see :func:`job_states_and_nodes`."""
    return job_states_and_nodes(job_ids)[0]


def node_lists(job_ids: Sequence[str]) -> dict[str, str]:
    """{job id: node list (n[1-2])} of jobs that have nodes, from one sacct call per 100 KB of ids (flat cost,
    like :func:`job_states`); pending jobs ("None assigned") and ids Slurm does not know are left out."""
    found: dict[str, str] = {}
    for ids in _id_batches([job_id for job_id in job_ids if _SLURM_ID.match(job_id)]):
        for line in (query(["sacct", "-n", "-X", "-P", "-j", ids, "-o", "JobID,NodeList"]) or "").splitlines():
            jid, _, nodes = line.strip().partition("|")
            if nodes and nodes != "None assigned" and jid not in found:
                found[jid] = nodes
    return found


def parse_duration(text: str) -> float | None:
    """squeue's %L (time left): [D-]HH:MM:SS, MM:SS or SS -> seconds; None for UNLIMITED/INVALID/empty."""
    text = text.strip()
    days = 0
    if "-" in text:
        day_text, _, text = text.partition("-")
        if not day_text.isdigit():
            return None
        days = int(day_text)
    parts = text.split(":")
    if not text or not all(p.isdigit() for p in parts) or len(parts) > 3:
        return None
    seconds = 0
    for part in parts:
        seconds = seconds * 60 + int(part)
    return float(days * 86400 + seconds)


def time_left_s(job_id: str) -> float | None:
    """What is left of a running job's allocation, from squeue; None when squeue cannot tell."""
    out = query(["squeue", "-h", "-j", job_id, "-o", "%L"])
    return parse_duration(out.splitlines()[0]) if out and out.strip() else None


def update_job(job_id: str, changes: Sequence[str]) -> None:
    """``scontrol update JobId=... KEY=VALUE...`` (a task's own time limit and name in an array)."""
    run(["scontrol", "update", f"JobId={job_id}", *changes])


def cancel(job_id: str) -> None:
    run(["scancel", job_id])
