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
    from .local_jobs import pid_of

    folder = Path(record.get("submitit_folder", ""))
    result = folder / f"{record.get('pid', record['job_id'])}_0_result.pkl"
    if result.is_file():
        try:
            with open(result, "rb") as handle:
                outcome = pickle.load(handle)[0]
        except Exception:  # noqa: BLE001 - a half-written pickle means the job is finishing
            return None
        return "COMPLETED" if outcome == "success" else "FAILED"
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
        for source, probe in (("sacct", sacct_state), ("squeue", squeue_state)):
            state = probe(job_id)
            if state:
                return state, source
    status = records.read_status(records.workload_dir(install_dir, record["workload"]), job_id)
    if status:
        return status["state"], "status file"
    return "UNKNOWN", "none"


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


def iter_records(install_dir: Path) -> Iterator[dict[str, Any]]:
    """Every readable submission record; a corrupt one is skipped with a one-line warning naming it."""
    for path in sorted((install_dir / "workloads").glob(f"*/{records.SUBMITTED_DIR}/*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            problem = _record_problem(record)
        except (OSError, ValueError, RecursionError) as exc:
            problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if problem:
            print(f"warning: skipped submission record {path}: {problem}", file=sys.stderr)
            continue
        yield record


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
    items = status.get("results") if isinstance(status.get("results"), list) else []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("use_case"), str):
            continue
        try:
            document = json.loads(Path(str(item.get("result_file"))).read_text())
            measured = document.get("measured") or {}
            headline = measured.get("headline") if isinstance(measured.get("headline"), dict) else None
            verdict = document["verdict"]
            reasons = [str(r) for r in verdict.get("reasons") or []]
            remedy = verdict.get("remedy")
        except (OSError, ValueError, RecursionError, TypeError, KeyError, AttributeError):
            out.append({**item, "headline": None})
            continue
        out.append({**item, "headline": headline, "reasons": reasons, "remedy": remedy})
    for name in status.get("not_run") if isinstance(status.get("not_run"), list) else []:
        out.append({"use_case": str(name), "verdict": "NOT RUN"})
    return out


def format_summary(job_id: str, state: str, results: list[dict[str, Any]]) -> str:
    lines = [f"{job_id}: {state}"]
    for r in results:
        text = f"  {r['use_case']}: {r['verdict']}"
        if r.get("classification"):
            text += f" ({r['classification']})"
        head = r.get("headline") or {}
        value = head.get("output_tok_s_gpu")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            text += f"  {value:.1f} output tok/s/GPU"
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
    done = subprocess.run(["scancel", record["job_id"]], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise HostError(f"scancel {record['job_id']} failed: {done.stderr.strip()}")
