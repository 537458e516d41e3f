"""submitit executors that take the job's environment as an argument instead of reading ``os.environ``.

Why: submitit starts sbatch (and the local job controller) with the submitting process's environment, and the
job inherits it. Swapping ``os.environ`` around the call changes the whole process; here the environment is
handed to sbatch (through :mod:`.slurm`, with its timeout) or to the local controller explicitly, and secrets
never reach a file on disk. These override two documented-as-internal submitit methods (checked against
submitit 1.5): ``_submit_command`` and the array branch of ``_internal_process_submissions``.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Mapping

from . import slurm

_CLASSES: dict[str, type] = {}


def _slurm_class() -> type:
    import submitit
    from submitit.core import utils

    class EnvSlurmExecutor(submitit.SlurmExecutor):
        """SlurmExecutor whose sbatch call gets ``sbatch_env`` and goes through the Slurm layer."""

        sbatch_env: Mapping[str, str] = {}

        def _submit_command(self, command: str) -> Any:
            token = uuid.uuid4().hex
            folder = utils.JobPaths.get_first_id_independent_folder(self.folder)
            folder.mkdir(parents=True, exist_ok=True)
            script = folder / f".submission_file_{token}.sh"
            script.write_text(self._make_submission_file_text(command, token))
            output = slurm.sbatch(script, self.sbatch_env)
            job_id = self._get_job_id_from_submission_command(output)
            job = self.job_class(folder=self.folder, job_id=job_id, tasks=list(range(self._num_tasks())))
            job.paths.move_temporary_file(script, "submission_file", keep_as_symlink=True)
            self._write_job_id(job.job_id, token)
            self._set_job_permissions(job.paths.folder)
            return job

        def _internal_process_submissions(self, delayed_submissions: list[Any]) -> list[Any]:
            if len(delayed_submissions) == 1:
                return super()._internal_process_submissions(delayed_submissions)
            folder = utils.JobPaths.get_first_id_independent_folder(self.folder)
            folder.mkdir(parents=True, exist_ok=True)
            pickles = []
            for delayed in delayed_submissions:
                path = folder / f"{uuid.uuid4().hex}.pkl"
                delayed.set_timeout(self.parameters.get("time", 5), self.max_num_timeout)
                delayed.dump(path)
                pickles.append(path)
            array = type(self)(self.folder, self.max_num_timeout, python=self.python)
            array.update_parameters(**self.parameters)
            array.parameters["map_count"] = len(delayed_submissions)
            array.sbatch_env = self.sbatch_env
            first = array._submit_command(self._submitit_command_str)
            tasks = list(range(first.num_tasks))
            jobs = [submitit.SlurmJob(folder=self.folder, job_id=f"{first.job_id}_{a}", tasks=tasks)
                    for a in range(len(delayed_submissions))]
            for job, path in zip(jobs, pickles):
                job.paths.move_temporary_file(path, "submitted_pickle")
            return jobs

    return EnvSlurmExecutor


def _local_class() -> type:
    import submitit
    from submitit.local.local import LocalJob

    class EnvLocalExecutor(submitit.LocalExecutor):
        """LocalExecutor whose job controller runs with ``job_env`` rather than this process's environment, in its
        own session (Ctrl-C on the terminal that submitted it does not reach the job; `llmb-run jobs cancel`
        does), its output in a log beside the jobs' folders (a caller reading llmb-run's pipes is never held
        open by a job that outlives it)."""

        job_env: Mapping[str, str] = {}

        def _submit_command(self, command: str) -> Any:
            env = dict(self.job_env)
            env.update(SUBMITIT_LOCAL_NTASKS="1", SUBMITIT_LOCAL_COMMAND=command,
                       SUBMITIT_LOCAL_TIMEOUT_S=str(int(60 * self.parameters.get("timeout_min", 2.0))),
                       SUBMITIT_LOCAL_SIGNAL_DELAY_S=str(int(self.parameters.get("signal_delay_s", 30))),
                       SUBMITIT_LOCAL_NODEID="0", SUBMITIT_LOCAL_JOB_NUM_NODES="1", SUBMITIT_STDERR_TO_STDOUT="",
                       SUBMITIT_EXECUTOR="local", SUBMITIT_LOCAL_WITH_SHELL="")
            # submitit would set CUDA_VISIBLE_DEVICES="" (no GPU asked for) and hide every GPU from a local
            # benchmark; the job keeps what its environment says, and sees all GPUs when it says nothing.
            log = self.folder.parent / "controller.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "ab") as out:
                process = subprocess.Popen([sys.executable, "-m", "submitit.local._local", str(self.folder)],
                                           env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                           start_new_session=True)
            return LocalJob(folder=self.folder, job_id=str(process.pid), process=process, tasks=[0])

    return EnvLocalExecutor


def make_executor(kind: str, folder: Path, env: Mapping[str, str], python: str | None = None) -> Any:
    """A submitit executor of ``kind`` ("slurm" or "local") whose jobs get exactly ``env`` and run ``python``
    (default: this interpreter; cluster_config.yaml's ``workloads.config.<key>.venv_path`` names another)."""
    from .safety import interpreter

    if kind not in _CLASSES:
        _CLASSES[kind] = _slurm_class() if kind == "slurm" else _local_class()
    python = interpreter(python or sys.executable)  # quoted in the batch script: a path may hold spaces or `$(`
    if kind == "slurm":
        executor = _CLASSES[kind](folder=folder / "%j", python=python)
        executor.sbatch_env = dict(env)
    else:
        executor = _CLASSES[kind](folder=folder / "%j", python=python)
        executor.job_env = dict(env)
    return executor
