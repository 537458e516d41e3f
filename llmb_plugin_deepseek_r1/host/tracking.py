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


def job_nodes(install_dir: Path, record: dict[str, Any]) -> str | None:
    """The job's node list (Slurm's compact form, e.g. n[1-2]): the job's own status file, else squeue, else
    sacct; None while no node is allocated or no source knows."""
    status = records.read_status(records.workload_dir(install_dir, record["workload"]), record["job_id"]) or {}
    if status.get("nodes"):
        return str(status["nodes"])
    if record.get("executor") == "local":
        return None
    out = slurm_output(["squeue", "-h", "-j", record["job_id"], "-o", "%N"])
    if out and out.strip():
        return out.split()[0]
    out = slurm_output(["sacct", "-n", "-X", "-P", "-j", record["job_id"], "-o", "JobID,NodeList"])
    for line in (out or "").splitlines():
        jid, _, nodes = line.partition("|")
        if jid == record["job_id"] and nodes and nodes != "None assigned":
            return nodes
    return None


def iter_records(install_dir: Path) -> Iterator[dict[str, Any]]:
    for path in sorted((install_dir / "workloads").glob(f"*/{records.SUBMITTED_DIR}/*.json")):
        try:
            yield json.loads(path.read_text())
        except (OSError, ValueError):
            continue


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
