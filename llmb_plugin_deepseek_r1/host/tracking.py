"""`llmb-run jobs`: find submitted jobs again and tell their state, with a deadline on every wait.

State comes from sacct; where accounting is missing or purged, from squeue; then from the job's own status file
(and, for local jobs, submitit's result file). A job none of these knows is UNKNOWN, never waited on forever.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

from llmb_plugin_deepseek_r1.host import records
from .errors import HostError, ValidationError

TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED",
            "BOOT_FAIL", "DEADLINE", "REVOKED"}
POLL_S = 1.0


def slurm_output(argv: list[str]) -> str | None:
    """stdout of a Slurm client command, or None when it cannot run, times out or fails."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def sacct_state(job_id: str) -> str | None:
    out = slurm_output(["sacct", "-n", "-X", "-P", "-j", job_id, "-o", "JobID,State"])
    for line in (out or "").splitlines():
        jid, _, state = line.partition("|")
        if jid == job_id and state:
            return state.split()[0].rstrip("+")
    return None


def squeue_state(job_id: str) -> str | None:
    out = slurm_output(["squeue", "-h", "-j", job_id, "-o", "%T"])
    lines = (out or "").split()
    return lines[0] if lines else None


def _local_state(record: dict[str, Any]) -> str | None:
    folder = Path(record.get("submitit_folder", ""))
    result = folder / f"{record['job_id']}_0_result.pkl"
    if result.is_file():
        try:
            with open(result, "rb") as handle:
                outcome = pickle.load(handle)[0]
        except Exception:  # noqa: BLE001 - a half-written pickle means the job is finishing
            return None
        return "COMPLETED" if outcome == "success" else "FAILED"
    try:
        os.kill(int(record["job_id"]), 0)
        return "RUNNING"
    except (ValueError, ProcessLookupError, PermissionError):
        return None


def job_state(install_dir: Path, record: dict[str, Any]) -> tuple[str, str]:
    """(state, where it came from) for one submitted job."""
    job_id = record["job_id"]
    if record.get("executor") == "local":
        state = _local_state(record)
        if state:
            return state, "submitit"
    else:
        for source, probe in (("sacct", sacct_state), ("squeue", squeue_state)):
            state = probe(job_id)
            if state:
                return state, source
    status = records.read_status(records.workload_dir(install_dir, record["workload"]), job_id)
    if status:
        return status["state"], "status file"
    return "UNKNOWN", "none"


#: Characters of job ids per sacct/squeue call when states are asked in bulk (Linux caps one argument at 128 KiB).
BULK_ID_CHARS = 100_000


def _id_lists(job_ids: list[str]) -> Iterator[str]:
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


def _bulk_states(argv_for: Any, job_ids: list[str]) -> dict[str, str]:
    """{job id: state} from ``JobID|State`` lines of one Slurm command per batch of ids (first line wins)."""
    states: dict[str, str] = {}
    for ids in _id_lists(job_ids):
        for line in (slurm_output(argv_for(ids)) or "").splitlines():
            jid, _, state = line.strip().partition("|")
            if state and jid not in states:
                states[jid] = state.split()[0].rstrip("+")
    return states


def _sacct_argv(ids: str) -> list[str]:
    return ["sacct", "-n", "-X", "-P", "-j", ids, "-o", "JobID,State"]


def _squeue_argv(ids: str) -> list[str]:
    return ["squeue", "-h", "-r", "-j", ids, "-o", "%i|%T"]


def _record_files(install_dir: Path) -> list[Path]:
    """Submission record files under ``install_dir``, in path order (one listing per workload, no glob)."""
    root = install_dir / "workloads"
    try:
        workloads = sorted(e.name for e in os.scandir(root) if not e.name.startswith(".") and e.is_dir())
    except OSError:
        return []
    files = []
    for workload in workloads:
        folder = root / workload / records.SUBMITTED_DIR
        try:
            names = sorted(e.name for e in os.scandir(folder) if e.name.endswith(".json") and e.name[0] != ".")
        except OSError:
            continue
        files += [folder / name for name in names]
    return files


def _read_records(files: list[Path]) -> Iterator[dict[str, Any]]:
    for path in files:
        try:
            with open(path, "rb") as handle:
                yield json.loads(handle.read())
        except (OSError, ValueError):
            continue


def iter_records(install_dir: Path) -> Iterator[dict[str, Any]]:
    """Every submission record under ``install_dir``, in path order."""
    yield from _read_records(_record_files(install_dir))


def list_jobs(install_dir: Path) -> list[tuple[dict[str, Any], str, str]]:
    """(record, state, source) of every submitted job, each state what :func:`job_state` would say.

    Flat cost for thousands of jobs: one sacct and one squeue call per 100 KB of job ids (not one or two per
    job), both started from the record file names (``<job id>.json``) so that they run while the records are
    read; their answers count only for records of the Slurm executor, in job_state's order (sacct, squeue, the
    job's status file). The status folder is listed once instead of a failed open per job.
    """
    from concurrent.futures import ThreadPoolExecutor

    files = _record_files(install_dir)
    if not files:
        return []
    ids = [path.name[: -len(".json")] for path in files]
    with ThreadPoolExecutor(2) as pool:
        sacct = pool.submit(_bulk_states, _sacct_argv, ids)
        squeue = pool.submit(_bulk_states, _squeue_argv, ids)
        recs = list(_read_records(files))
        from_sacct, from_squeue = sacct.result(), squeue.result()
    status_names: dict[str, set[str]] = {}

    def read_status(record: dict[str, Any]) -> dict[str, Any] | None:
        wdir = records.workload_dir(install_dir, record["workload"])
        if record["workload"] not in status_names:
            try:
                status_names[record["workload"]] = set(os.listdir(wdir / records.STATUS_DIR))
            except OSError:
                status_names[record["workload"]] = set()
        if f"{record['job_id']}.json" not in status_names[record["workload"]]:
            return None
        return records.read_status(wdir, record["job_id"])

    listed = []
    for record in recs:
        job_id = record["job_id"]
        if record.get("executor") == "local":
            state = _local_state(record)
            if state:
                listed.append((record, state, "submitit"))
                continue
        elif job_id in from_sacct:
            listed.append((record, from_sacct[job_id], "sacct"))
            continue
        elif job_id in from_squeue:
            listed.append((record, from_squeue[job_id], "squeue"))
            continue
        status = read_status(record)
        listed.append((record, *((status["state"], "status file") if status else ("UNKNOWN", "none"))))
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
    return float(record.get("plan", {}).get("slurm", {}).get("time_min", 60)) * 60 + 600


def result_summaries(install_dir: Path, record: dict[str, Any]) -> list[dict[str, Any]]:
    """The verdicts the job wrote (result JSON files named in its status file)."""
    status = records.read_status(records.workload_dir(install_dir, record["workload"]), record["job_id"]) or {}
    out = []
    for item in status.get("results", []):
        try:
            document = json.loads(Path(item["result_file"]).read_text())
        except (OSError, ValueError):
            out.append({**item, "headline": None})
            continue
        measured = document.get("measured") or {}
        out.append({**item, "headline": measured.get("headline"), "reasons": document["verdict"]["reasons"],
                    "remedy": document["verdict"].get("remedy")})
    for name in status.get("not_run", []):
        out.append({"use_case": name, "verdict": "NOT RUN"})
    return out


def format_summary(job_id: str, state: str, results: list[dict[str, Any]]) -> str:
    lines = [f"{job_id}: {state}"]
    for r in results:
        text = f"  {r['use_case']}: {r['verdict']}"
        if r.get("classification"):
            text += f" ({r['classification']})"
        head = r.get("headline") or {}
        if "output_tok_s_gpu" in head:
            text += f"  {head['output_tok_s_gpu']:.1f} output tok/s/GPU"
        if r.get("reasons"):
            text += f"  - {r['reasons'][0]}"
        lines.append(text)
        if r.get("remedy"):
            lines.append(f"    remedy: {r['remedy']}")
    return "\n".join(lines)


def wait_all(install_dir: Path, job_ids: list[str], timeout_s: float | None = None) -> list[dict[str, Any]]:
    """Wait for every job (each with its deadline); their final states and verdicts."""
    outcomes = []
    for job_id in job_ids:
        record = find_record(install_dir, job_id)
        state = wait_for(install_dir, record, timeout_s or default_timeout(record))
        outcomes.append({"job_id": job_id, "state": state, "results": result_summaries(install_dir, record)})
    return outcomes


def wait_and_summarise(install_dir: Path, job_ids: list[str], timeout_s: float | None = None) -> int:
    """Wait for every job; print each one's verdicts. 0 when all COMPLETED, 1 otherwise."""
    outcomes = wait_all(install_dir, job_ids, timeout_s)
    for outcome in outcomes:
        print(format_summary(outcome["job_id"], outcome["state"], outcome["results"]))
    sys.stdout.flush()
    return 0 if all(o["state"] == "COMPLETED" for o in outcomes) else 1


def log_paths(record: dict[str, Any]) -> list[Path]:
    folder = Path(record["submitit_folder"])
    return [folder / f"{record['job_id']}_0_log.out", folder / f"{record['job_id']}_0_log.err"]


def cancel(install_dir: Path, record: dict[str, Any]) -> None:
    if record.get("executor") == "local":
        try:
            os.kill(int(record["job_id"]), 15)
        except (ValueError, ProcessLookupError) as exc:
            raise HostError(f"cannot cancel local job {record['job_id']}: {exc}") from None
        return
    done = subprocess.run(["scancel", record["job_id"]], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise HostError(f"scancel {record['job_id']} failed: {done.stderr.strip()}")
