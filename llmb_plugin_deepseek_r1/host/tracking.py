"""`llmb-run jobs`: find submitted jobs again and tell their state, with a deadline on every wait.

State comes from sacct; where accounting is missing or purged, from squeue; then from the job's own status file
(and, for local jobs, submitit's result file). A job none of these knows is UNKNOWN, never waited on forever.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import time
from pathlib import Path
from typing import Any, Iterator, Mapping

from llmb_plugin_deepseek_r1.host import records
from . import slurm
from .contract import JobSummary
from .errors import EXIT_BENCHMARK_FAILED, EXIT_OK, HostError, LlmbError, ValidationError

TERMINAL = slurm.TERMINAL
POLL_S = 1.0
WAIT_SLACK_S = 600.0  # a wait's default deadline: the job's time limit plus this (queueing, start-up)


def submitit_result(record: Mapping[str, Any]) -> tuple[str, Any] | None:
    """submitit's (outcome, value) of a finished job ("success" or "error"); None while there is none yet."""
    name = record.get("pid", record["job_id"])  # local jobs: submitit names its files by process id
    result = Path(record.get("submitit_folder", "")) / f"{name}_0_result.pkl"
    if not result.is_file():
        return None
    try:
        with open(result, "rb") as handle:
            outcome, value = pickle.load(handle)[:2]
    except Exception:  # noqa: BLE001 - a half-written pickle means the job is finishing
        return None
    return outcome, value


def _local_state(record: dict[str, Any]) -> str | None:
    from .local_jobs import pid_of

    result = submitit_result(record)
    if result is not None:
        return "COMPLETED" if result[0] == "success" else "FAILED"
    pid = pid_of(record)
    if pid is None:
        return None
    try:
        os.kill(pid, 0)
        return "RUNNING"
    except (ValueError, ProcessLookupError, PermissionError, OverflowError):
        return None


def job_state(install_dir: Path, record: dict[str, Any]) -> tuple[str, str]:
    """(state, where it came from) for one submitted job."""
    job_id = record["job_id"]
    if record.get("executor") == "local":
        state = _local_state(record)
        if state:
            return state, "submitit"
    else:
        found = slurm.job_state(job_id)
        if found:
            return found
    status = records.read_status(records.workload_dir(install_dir, record["workload"]), job_id)
    if status:
        return status["state"], "status file"
    return "UNKNOWN", "none"


def node_lists(install_dir: Path, recs: list[dict[str, Any]]) -> dict[str, str]:
    """{job id: node list} for `jobs list`: one bulk sacct query for the Slurm jobs (slurm.node_lists), the job's
    own status file for the rest (a local job, or one accounting does not know)."""
    slurm_ids = [r["job_id"] for r in recs if r.get("executor") != "local"]
    found = slurm.node_lists(slurm_ids) if slurm_ids else {}
    for record in recs:
        if record["job_id"] not in found and record.get("executor") != "local":
            status = records.read_status(records.workload_dir(install_dir, record["workload"]), record["job_id"])
            if status and status.get("nodes"):
                found[record["job_id"]] = str(status["nodes"])
    return found


def job_nodes(install_dir: Path, record: dict[str, Any]) -> str | None:
    """The job's node list (Slurm's compact form, e.g. n[1-2]): the job's own status file, else squeue, else
    sacct; None while no node is allocated or no source knows."""
    status = records.read_status(records.workload_dir(install_dir, record["workload"]), record["job_id"]) or {}
    if status.get("nodes"):
        return str(status["nodes"])
    if record.get("executor") == "local":
        return None
    return slurm.node_list(record["job_id"])
_RECORD_TYPES = {"job_id": str, "workload": str, "plan": dict, "submitted": (int, float)}


def _record_problem(record: Any) -> str | None:
    if not isinstance(record, dict):
        return "not a JSON object"
    for key, kind in _RECORD_TYPES.items():
        if not isinstance(record.get(key), kind) or isinstance(record.get(key), bool):
            return f"{key!r} missing or not a {getattr(kind, '__name__', 'number')}"
    if not isinstance(record["plan"].get("name"), str):
        return "'plan' has no name"
    if not -1e11 < record["submitted"] < 1e11:
        return f"'submitted' {record['submitted']!r} is not a time"
    return None


def _record_files(install_dir: Path) -> list[str]:
    """Submission record files under ``install_dir``, in path order (one listing per workload, no glob; plain
    strings: Path objects for thousands of records cost more than reading them)."""
    root = os.path.join(install_dir, "workloads")
    try:
        workloads = sorted(e.name for e in os.scandir(root) if not e.name.startswith(".") and e.is_dir())
    except OSError:
        return []
    files = []
    for workload in workloads:
        folder = os.path.join(root, workload, records.SUBMITTED_DIR)
        try:
            names = sorted(e.name for e in os.scandir(folder) if e.name.endswith(".json") and e.name[0] != ".")
        except OSError:
            continue
        files += [os.path.join(folder, name) for name in names]
    return files


def _read_records(files: list[str]) -> Iterator[dict[str, Any]]:
    """The readable records of ``files``; a corrupt one is skipped with a one-line warning naming it."""
    for path in files:
        try:
            with open(path, "rb") as handle:
                record = json.loads(handle.read().decode("utf-8"))
            problem = _record_problem(record)
        except (OSError, ValueError, RecursionError) as exc:
            problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if problem:
            print(f"warning: skipped submission record {path}: {problem}", file=sys.stderr)
            continue
        yield record


def iter_records(install_dir: Path) -> Iterator[dict[str, Any]]:
    """Every submission record under ``install_dir``, in path order."""
    yield from _read_records(_record_files(install_dir))


def list_jobs(install_dir: Path) -> list[tuple[dict[str, Any], str, str]]:
    """(record, state, source) of every submitted job: see :func:`list_jobs_with_nodes`."""
    return [(record, state, source) for record, state, source, _ in list_jobs_with_nodes(install_dir)]


def list_jobs_with_nodes(install_dir: Path) -> list[tuple[dict[str, Any], str, str, str | None]]:
    """(record, state, source, node list) of every submitted job, each state what :func:`job_state` and each node
    list what :func:`node_lists` would say.

    Flat cost for thousands of jobs: one sacct call (state and nodes) and one squeue call per 100 KB of job ids
    (not one or two per job), started from the record file names (``<job id>.json``) so that they run, as child
    processes, while the records are read; their answers count only for records of the Slurm executor, in
    job_state's order (sacct, squeue, the job's status file). The status folder is listed once, and each existing
    status file read once, instead of a failed open per job; status files are read while sacct (slurmdbd) is
    still answering.
    """
    files = _record_files(install_dir)
    if not files:
        return []
    folders: dict[str, tuple[Path, set[str]]] = {}  # per workload: its folder, the names in its status folder
    statuses: dict[tuple[str, str], dict[str, Any] | None] = {}

    def read_status(record: dict[str, Any]) -> dict[str, Any] | None:
        workload, job_id = record["workload"], record["job_id"]
        if (workload, job_id) not in statuses:
            if workload not in folders:
                wdir = records.workload_dir(install_dir, workload)
                try:
                    folders[workload] = (wdir, set(os.listdir(wdir / records.STATUS_DIR)))
                except OSError:
                    folders[workload] = (wdir, set())
            wdir, names = folders[workload]
            present = f"{job_id}.json" in names  # read_status checks the name
            statuses[(workload, job_id)] = records.read_status(wdir, job_id) if present else None
        return statuses[(workload, job_id)]

    asked = slurm.BulkStates([os.path.basename(path)[: -len(".json")] for path in files])
    recs = list(_read_records(files))
    for record in recs:  # while sacct is still busy: the status files its answer may leave needed
        if asked.done():
            break
        if record.get("executor") != "local":
            read_status(record)
    known, node_lists_ = asked.result()
    listed = []
    for record in recs:
        job_id = record["job_id"]
        local = record.get("executor") == "local"
        nodes = None
        if not local:
            nodes = node_lists_.get(job_id)
            if nodes is None:
                status = read_status(record)
                nodes = str(status["nodes"]) if status and status.get("nodes") else None
        if local:
            state = _local_state(record)
            if state:
                listed.append((record, state, "submitit", nodes))
                continue
        elif job_id in known:
            listed.append((record, *known[job_id], nodes))
            continue
        status = read_status(record)
        listed.append((record, *((status["state"], "status file") if status else ("UNKNOWN", "none")), nodes))
    return listed


def find_record(install_dir: Path, job_id: str) -> dict[str, Any]:
    for record in iter_records(install_dir):
        if record["job_id"] == job_id:
            return record
    raise ValidationError(f"no submitted job {job_id!r} under {install_dir}/workloads; `llmb-run jobs list` shows "
                          f"the known ones")


def wait_for(install_dir: Path, record: dict[str, Any], timeout_s: float) -> str:
    """Poll until the job is in a terminal state; HostError at the deadline (never spins forever)."""
    deadline = time.monotonic() + timeout_s
    while True:
        state, _ = job_state(install_dir, record)
        if state in TERMINAL:
            return state
        if time.monotonic() >= deadline:
            raise HostError(f"job {record['job_id']} still {state} after {timeout_s:.0f} s")
        time.sleep(POLL_S)


def default_timeout(record: dict[str, Any]) -> float:
    """The job's own time limit plus queueing slack."""
    return float(record.get("plan", {}).get("slurm", {}).get("time_min", 60)) * 60 + WAIT_SLACK_S


def result_summaries(install_dir: Path, record: Mapping[str, Any]) -> list[JobSummary]:
    """The job's outcome as its workload tells it (the host never reads a workload's result files)."""
    from .plugins import shared_registry

    status = records.read_status(records.workload_dir(install_dir, record["workload"]), record["job_id"]) or {}
    try:
        workload = shared_registry().get(record["workload"])
    except LlmbError:  # the plugin is gone: the state alone is still worth showing
        return []
    return workload.summarise_job(status)


def format_summary(job_id: str, state: str, summaries: list[JobSummary]) -> str:
    return "\n".join([f"{job_id}: {state}", *(f"  {s.text}" for s in summaries)])


def wait_all(install_dir: Path, job_ids: list[str], timeout_s: float | None = None) -> list[dict[str, Any]]:
    """Wait for every job (each with its deadline); their final states and verdicts."""
    outcomes = []
    for job_id in job_ids:
        record = find_record(install_dir, job_id)
        state = wait_for(install_dir, record, timeout_s or default_timeout(record))
        outcomes.append({"job_id": job_id, "state": state,
                         "results": [dict(s.details) for s in result_summaries(install_dir, record)]})
    return outcomes


def wait_and_summarise(install_dir: Path, job_ids: list[str], timeout_s: float | None = None) -> int:
    """Wait for every job; print each one's verdicts. 0 when all COMPLETED, else 4 (the benchmark failed)."""
    outcomes = wait_all(install_dir, job_ids, timeout_s)
    for outcome in outcomes:
        record = find_record(install_dir, outcome["job_id"])
        print(format_summary(outcome["job_id"], outcome["state"], result_summaries(install_dir, record)))
    sys.stdout.flush()
    return EXIT_OK if all(o["state"] == "COMPLETED" for o in outcomes) else EXIT_BENCHMARK_FAILED


def log_paths(record: dict[str, Any]) -> list[Path]:
    folder = Path(record["submitit_folder"])
    name = record.get("pid", record["job_id"])  # local jobs: submitit names the logs by process id
    return [folder / f"{name}_0_log.out", folder / f"{name}_0_log.err"]


def cancel(install_dir: Path, record: dict[str, Any]) -> None:
    if record.get("executor") == "local":
        from .local_jobs import pid_of

        pid = pid_of(record)
        if pid is None:
            raise HostError(f"cannot cancel local job {record['job_id']}: it was started on another machine or "
                            f"in another PID namespace ({record.get('host')})")
        try:
            os.kill(pid, 15)
        except (ValueError, ProcessLookupError, OverflowError) as exc:
            raise HostError(f"cannot cancel local job {record['job_id']}: {exc}") from None
        return
    slurm.cancel(record["job_id"])
