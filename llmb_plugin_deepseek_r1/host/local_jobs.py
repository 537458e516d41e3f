"""Ids of jobs on this machine (no Slurm), unique across machines and PID namespaces.

Why: submitit names a local job by its controller's process id, so two runs in containers (separate PID
namespaces) on shared storage got the same id and the second overwrote the first's records. (The controller
runs in its own session: host/executors.py.)
"""

from __future__ import annotations

import os
import re
import secrets
import socket
from typing import Any, Mapping

TOKEN_VAR = "LLMB_LOCAL_TOKEN"  # set for the job by the submitter: the job builds its own id from it
_ID = re.compile(r"^local-(?P<token>[0-9a-f]{8,})-(?P<pid>\d+)$")


def new_token() -> str:
    """A random token per submission group (the folder and every job id of the group carry it)."""
    return secrets.token_hex(6)


def local_job_id(token: str, pid: int | str) -> str:
    """``local-<token>-<pid>``: the pid says which process to signal, the token makes the id unique."""
    return f"local-{token}-{int(pid)}"


def job_id_from_environ(environ: Mapping[str, str]) -> str | None:
    """Inside a local job: its id, from the submitter's token and submitit's process id."""
    token, pid = environ.get(TOKEN_VAR), environ.get("SUBMITIT_LOCAL_JOB_ID")
    if token and pid and re.fullmatch(r"[0-9a-f]{8,}", token) and pid.isdigit():
        return local_job_id(token, pid)
    return None


def pid_of(record: Mapping[str, Any]) -> int | None:
    """The process to signal for a local job, only on the machine that started it (a pid means nothing
    elsewhere, nor in another PID namespace that shares the host name: the record's boot id must match too)."""
    if record.get("host") not in (None, socket.gethostname()) or record.get("boot_id") not in (None, boot_id()):
        return None
    pid = record.get("pid")
    if pid is None:  # records written before unique ids: the id was the pid
        pid = record.get("job_id")
    try:
        return int(pid)
    except (TypeError, ValueError):
        return None


def boot_id() -> str | None:
    """This kernel boot plus PID namespace: a pid is meaningful only where both match."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as handle:
            boot = handle.read().strip()
        return f"{boot}:{os.readlink('/proc/self/ns/pid')}"
    except OSError:
        return None


__all__ = ["TOKEN_VAR", "boot_id", "job_id_from_environ", "local_job_id", "new_token", "pid_of"]
