"""Files written by jobs and submissions: atomic JSON, never overwriting, and the job status records that
tracking falls back on when Slurm accounting is missing."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

# Inside $LLMB_WORKLOAD (= $LLMB_INSTALL/workloads/<workload key>), by llmb convention.
STATUS_DIR = Path("experiments") / ".llmb" / "jobs"          # written by jobs: their own state
SUBMITTED_DIR = Path("experiments") / ".llmb" / "submitted"  # written at submission: one record per job id
SUBMITIT_DIR = Path("experiments") / ".llmb" / "submitit"    # submitit's pickles and job logs


def workload_dir(install_dir: Path, workload: str) -> Path:
    return install_dir / "workloads" / workload


def write_json_atomic(path: Path, data: Any, *, overwrite: bool = True) -> Path:
    """Write JSON to a temporary file in the same folder and rename it into place.

    With ``overwrite=False`` an existing file is never replaced (FileExistsError), so a result cannot be lost.
    """
    return write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n",
                             overwrite=overwrite)


def write_text_atomic(path: Path, text: str, *, overwrite: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails with FileExistsError instead of replacing
            os.unlink(tmp)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def status_path(workload_dir: Path, job_id: str) -> Path:
    return workload_dir / STATUS_DIR / f"{job_id}.json"


def write_status(workload_dir: Path, job_id: str, state: str, **details: Any) -> Path:
    """The job's own view of its state (RUNNING, COMPLETED, FAILED), for tracking without sacct."""
    record = {"job_id": job_id, "state": state, "updated": time.time(), **details}
    return write_json_atomic(status_path(workload_dir, job_id), record)


def read_status(workload_dir: Path, job_id: str) -> dict[str, Any] | None:
    try:
        return json.loads(status_path(workload_dir, job_id).read_text())
    except (OSError, ValueError):
        return None
