"""The one Slurm layer (host/slurm.py) and the explicit job environment (host/executors.py).

The timeout and the state-reading order cannot be provoked on a healthy real Slurm, so these tests put small
STAND-IN sacct/squeue scripts on PATH; the real local Slurm is used by test_slurm_e2e and test_setup_slurm.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from llmb_plugin_deepseek_r1.host import slurm
from llmb_plugin_deepseek_r1.host.contract import JobPlan, SlurmParams
from llmb_plugin_deepseek_r1.host.errors import SlurmError
from llmb_plugin_deepseek_r1.host.submit import submit_jobs
from llmb_plugin_deepseek_r1.host.tracking import submitit_result, wait_for


def stand_in(folder: Path, name: str, script: str) -> None:
    path = folder / name
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def fake_bin(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    return folder


def test_every_call_has_a_timeout_and_fails_as_one_line(fake_bin):
    stand_in(fake_bin, "squeue", "exec sleep 30")
    with pytest.raises(SlurmError, match=r"^squeue did not answer within 0.5 s$"):
        slurm.run(["squeue", "-h"], timeout_s=0.5)
    stand_in(fake_bin, "scancel", "echo 'scancel: error: Kill job error on job id 7: Invalid job id' >&2; exit 1")
    with pytest.raises(SlurmError, match="scancel 7 failed: scancel: error: Kill job error on job id 7"):
        slurm.cancel("7")


def test_state_is_read_from_sacct_then_squeue(fake_bin):
    stand_in(fake_bin, "sacct", 'echo "7|COMPLETED"')
    stand_in(fake_bin, "squeue", "echo RUNNING")
    assert slurm.job_state("7") == ("COMPLETED", "sacct")
    stand_in(fake_bin, "sacct", "exit 0")  # accounting without the job (purged, or slow to record it)
    assert slurm.job_state("7") == ("RUNNING", "squeue")
    stand_in(fake_bin, "squeue", "exit 1")
    assert slurm.job_state("7") is None


def test_a_pending_query_keeps_the_deadline_and_a_failure_is_no_answer(fake_bin):
    stand_in(fake_bin, "sacct", "exec sleep 30")
    pending = slurm.PendingQuery(["sacct", "-n"], timeout_s=0.5)
    assert not pending.done() and pending.output() is None and pending.done()  # killed at the deadline
    stand_in(fake_bin, "sacct", "echo partial; exit 1")
    assert slurm.PendingQuery(["sacct"]).output() is None
    assert slurm.PendingQuery(["no-such-slurm-client"]).output() is None


def test_bulk_states_ask_each_batch_once_and_merge_sacct_over_squeue(fake_bin, tmp_path, monkeypatch):
    # sacct answers every id it is asked as COMPLETED on n1 except 3, squeue says RUNNING for all; each call logs
    # the ids it was asked, so the batches (over BULK_ID_CHARS) can be counted.
    log = tmp_path / "calls.log"
    stand_in(fake_bin, "sacct", f'echo "sacct $5" >> {log}; '
             'echo "$5" | tr , "\\n" | grep -v "^3$" | sed "s/$/|COMPLETED|n1/"')
    stand_in(fake_bin, "squeue", f'echo "squeue $4" >> {log}; echo "$4" | tr , "\\n" | sed "s/$/|RUNNING/"')
    monkeypatch.setattr(slurm, "BULK_ID_CHARS", 8)
    asked = slurm.BulkStates(["1", "2", "3", "4_5", "not-slurm"])
    states, nodes = asked.result()
    assert states == {"1": ("COMPLETED", "sacct"), "2": ("COMPLETED", "sacct"), "3": ("RUNNING", "squeue"),
                      "4_5": ("COMPLETED", "sacct")}
    assert nodes == {"1": "n1", "2": "n1", "4_5": "n1"}
    calls = log.read_text().split("\n")
    assert sorted(c for c in calls if c) == ["sacct 1,2,3", "sacct 4_5", "squeue 1,2,3", "squeue 4_5"]


def test_time_left_parses_squeue(fake_bin):
    stand_in(fake_bin, "squeue", "echo 1-02:03:04")
    assert slurm.time_left_s("7") == 86400 + 2 * 3600 + 3 * 60 + 4
    stand_in(fake_bin, "squeue", "echo UNLIMITED")
    assert slurm.time_left_s("7") is None


def test_a_local_job_gets_the_plan_environment_and_this_process_keeps_its_own(tmp_path, monkeypatch):
    monkeypatch.delenv("LLMB_TEST_MARKER", raising=False)
    before = dict(os.environ)
    env = {**os.environ, "LLMB_TEST_MARKER": "from-the-plan"}
    plan = JobPlan(name="probe", slurm=SlurmParams(job_name="probe", nodes=1, ntasks_per_node=1, time_min=1),
                   container={}, use_cases=[], env=env, body=os.getenv, body_args=("LLMB_TEST_MARKER",))
    [job], _ = submit_jobs([plan], tmp_path / "workloads" / "probe", "local")
    assert dict(os.environ) == before
    record = {"job_id": job.job_id, "pid": job.pid, "submitit_folder": str(job.folder), "executor": "local",
              "workload": "probe"}
    assert wait_for(tmp_path, record, 60) == "COMPLETED"
    assert submitit_result(record) == ("success", "from-the-plan")


@pytest.mark.parametrize("devices", ["0,1,2,3", None])
def test_a_local_job_sees_the_gpus_of_its_environment(tmp_path, devices):
    """submitit's LocalExecutor hides every GPU (CUDA_VISIBLE_DEVICES="") unless told a GPU count; a local
    benchmark on a GPU workstation must see the GPUs its environment names, and all of them when it names none."""
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    if devices is not None:
        env["CUDA_VISIBLE_DEVICES"] = devices
    plan = JobPlan(name="gpus", slurm=SlurmParams(job_name="gpus", nodes=1, ntasks_per_node=1, time_min=1),
                   container={}, use_cases=[], env=env, body=os.getenv, body_args=("CUDA_VISIBLE_DEVICES",))
    [job], _ = submit_jobs([plan], tmp_path / "workloads" / "gpus", "local")
    record = {"job_id": job.job_id, "pid": job.pid, "submitit_folder": str(job.folder), "executor": "local",
              "workload": "gpus"}
    assert wait_for(tmp_path, record, 60) == "COMPLETED"
    assert submitit_result(record) == ("success", devices)
