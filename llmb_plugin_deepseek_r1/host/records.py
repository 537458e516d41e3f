"""Files written by jobs and submissions: atomic JSON, never overwriting, and the job status records that
tracking falls back on when Slurm accounting is missing."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any, BinaryIO, Callable

# Inside $LLMB_WORKLOAD (= $LLMB_INSTALL/workloads/<workload key>), by llmb convention.
STATUS_DIR = Path("experiments") / ".llmb" / "jobs"          # written by jobs: their own state
SUBMITTED_DIR = Path("experiments") / ".llmb" / "submitted"  # written at submission: one record per job id
SUBMITIT_DIR = Path("experiments") / ".llmb" / "submitit"    # submitit's pickles and job logs


def safe_name(job_id: str) -> str:
    """A job id as part of a file name: Slurm's digits and '_' (arrays), local ids' letters and '-'."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", job_id):
        raise ValueError(f"unexpected job id {job_id!r}")
    return job_id


def workload_dir(install_dir: Path, workload: str) -> Path:
    return install_dir / "workloads" / workload


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: Path, write: Callable[[BinaryIO], object], *, overwrite: bool = True) -> Path:
    """Let ``write`` fill a temporary file in the same folder, then move it into place.

    Readers never see half a file. With ``overwrite=False`` an existing file is never replaced: os.link fails
    with FileExistsError instead of clobbering, so of two writers only one can win. The file gets the usual
    permissions (0666 less the umask), so results on shared storage stay readable by the team.
    """
    import tempfile  # only when writing (tempfile brings random and shutil: a dry run writes nothing)

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
            os.unlink(tmp)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_text_atomic(path: Path, text: str, *, overwrite: bool = True) -> Path:
    data = text.encode("utf-8")
    return write_atomic(path, lambda handle: handle.write(data), overwrite=overwrite)


def write_json_atomic(path: Path, data: Any, *, overwrite: bool = True) -> Path:
    """JSON, atomically; see write_atomic for ``overwrite``."""
    return write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n",
                             overwrite=overwrite)


def status_path(workload_dir: Path, job_id: str) -> Path:
    return workload_dir / STATUS_DIR / f"{job_id}.json"


def write_status(workload_dir: Path, job_id: str, state: str, **details: Any) -> Path:
    """The job's own view of its state (RUNNING, COMPLETED, FAILED), for tracking without sacct."""
    record = {"job_id": job_id, "state": state, "updated": time.time(), **details}
    return write_json_atomic(status_path(workload_dir, job_id), record)


def read_status(workload_dir: Path, job_id: str) -> dict[str, Any] | None:
    """The job's status record, or None when it is missing or not a usable record (a corrupt file is the
    job's loss of a status, never a crash of `llmb-run jobs`)."""
    try:
        record = json.loads(status_path(workload_dir, safe_name(job_id)).read_text())
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("state"), str):
        return None
    return record
