"""Jobs on this machine (no Slurm): submitit's local executor, detached from the terminal, with job ids that
are unique across machines and PID namespaces.

Why: submitit names a local job by its controller's process id, so two runs in containers (separate PID
namespaces) on shared storage got the same id and the second overwrote the first's records; and the controller
shared the terminal's process group, so Ctrl-C on `llmb-run single --wait` killed the job being waited for.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
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


def detached_executor(folder: Any) -> Any:
    """submitit's LocalExecutor whose job controller runs in its own session (Ctrl-C on the terminal that
    submitted it does not reach the job; `llmb-run jobs cancel` still does)."""
    import submitit
    from submitit.local.local import LocalJob

    class DetachedLocalExecutor(submitit.LocalExecutor):
        def _submit_command(self, command: str) -> Any:
            # submitit's start_controller, plus start_new_session (it offers no way to pass it)
            env = dict(os.environ)
            env.update(SUBMITIT_LOCAL_NTASKS="1", SUBMITIT_LOCAL_COMMAND=command,
                       SUBMITIT_LOCAL_TIMEOUT_S=str(int(60 * self.parameters.get("timeout_min", 2.0))),
                       SUBMITIT_LOCAL_SIGNAL_DELAY_S=str(int(self.parameters.get("signal_delay_s", 30))),
                       SUBMITIT_LOCAL_NODEID="0", SUBMITIT_LOCAL_JOB_NUM_NODES="1", SUBMITIT_STDERR_TO_STDOUT="",
                       SUBMITIT_EXECUTOR="local", CUDA_VISIBLE_DEVICES=env.get("CUDA_VISIBLE_DEVICES", ""),
                       SUBMITIT_LOCAL_WITH_SHELL="")
            # detached from the terminal too: its output goes to a log beside the jobs' folders, so a caller
            # reading llmb-run's pipes is never held open by a job that outlives it
            log = self.folder.parent / "controller.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "ab") as out:
                process = subprocess.Popen([sys.executable, "-m", "submitit.local._local", str(self.folder)],
                                           env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                           start_new_session=True)
            return LocalJob(folder=self.folder, job_id=str(process.pid), process=process, tasks=[0])

    return DetachedLocalExecutor(folder=folder, python=_quoted_python())


def _quoted_python() -> str:
    from .safety import interpreter

    return interpreter(sys.executable)


__all__ = ["TOKEN_VAR", "boot_id", "detached_executor", "job_id_from_environ", "local_job_id", "new_token",
           "pid_of"]
