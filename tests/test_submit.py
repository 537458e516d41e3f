"""Submission rules that need no Slurm: the nested-allocation guard and the local executor fallback (the job
runs the STAND-IN tests/fake_trtllm/trtllm-bench: TensorRT-LLM cannot run here)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from conftest import LLMB_RUN, RUN_ARGS
from jobkit import job_environ
from llmb_plugin_deepseek_r1.host.contract import JobPlan, SlurmParams
from llmb_plugin_deepseek_r1.host.submit import common_name, group_for_arrays, slurm_parameters


def llmb(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LLMB_RUN, *args], env=env, capture_output=True, text=True, timeout=timeout,
                          cwd=env["LLMB_INSTALL"])


def plan(name: str, time_min: int, partition: str | None = "gpu") -> JobPlan:
    return JobPlan(name=name, slurm=SlurmParams(job_name=name, nodes=1, ntasks_per_node=4, time_min=time_min,
                                                partition=partition, account="a", gpus_per_node=4),
                   container={}, use_cases=[])


def test_arrays_group_by_parameters_except_time_and_name():
    plans = [plan("w_chat", 30), plan("w_gen", 100), plan("w_other", 30, partition="other")]
    assert group_for_arrays(plans) == [[0, 1], [2]]
    assert common_name(["w_chat", "w_gen"]) == "w"
    assert slurm_parameters(plans[:2]) == {
        "job_name": "w", "nodes": 1, "ntasks_per_node": 4, "time": 100, "exclusive": True, "use_srun": False,
        "signal_delay_s": 60, "partition": "gpu", "account": "a", "gpus_per_node": 4}


def test_refuses_to_submit_from_inside_an_allocation(tmp_path):
    env = job_environ(tmp_path, SLURM_JOB_ID="99")
    done = llmb(env, *RUN_ARGS)
    assert done.returncode == 1 and "refusing to submit from inside a Slurm allocation" in done.stderr


def test_local_executor_when_no_sbatch(tmp_path):
    env = job_environ(tmp_path)
    env.pop("LLMB_JOB_ID")
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep)
                                  if not (Path(p) / "sbatch").exists())
    done = llmb(env, *RUN_ARGS, "--wait")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "with the local executor" in done.stdout and "chat: VALID" in done.stdout


def _fake_slurm_tools(bin_dir: Path, sacct_out: str | None, squeue_out: str | None) -> None:
    bin_dir.mkdir(exist_ok=True)
    for name, out in (("sacct", sacct_out), ("squeue", squeue_out)):
        script = bin_dir / name
        script.write_text("#!/bin/sh\nexit 1\n" if out is None else f"#!/bin/sh\nprintf '%s' '{out}'\n")
        script.chmod(0o755)


def _record(install: Path, job_id: str) -> dict:
    from llmb_plugin_deepseek_r1.host import records

    record = {"job_id": job_id, "workload": "inference_deepseek-r1", "executor": "slurm",
              "plan": {"slurm": {"time_min": 1}}}
    records.write_json_atomic(records.workload_dir(install, "inference_deepseek-r1") / records.SUBMITTED_DIR /
                              f"{job_id}.json", record)
    return record


def test_state_falls_back_from_sacct_to_squeue_to_status_file(tmp_path, monkeypatch):
    from llmb_plugin_deepseek_r1.host import records
    from llmb_plugin_deepseek_r1.host.tracking import job_state

    record = _record(tmp_path, "77")
    bin_dir = tmp_path / "bin"
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    _fake_slurm_tools(bin_dir, "77|COMPLETED\n", "RUNNING")
    assert job_state(tmp_path, record) == ("COMPLETED", "sacct")
    _fake_slurm_tools(bin_dir, None, "RUNNING")  # accounting missing
    assert job_state(tmp_path, record) == ("RUNNING", "squeue")
    _fake_slurm_tools(bin_dir, "", "")  # purged from both
    assert job_state(tmp_path, record) == ("UNKNOWN", "none")
    records.write_status(records.workload_dir(tmp_path, "inference_deepseek-r1"), "77", "FAILED")
    assert job_state(tmp_path, record) == ("FAILED", "status file")


def test_wait_on_unknown_job_has_a_deadline(tmp_path, monkeypatch):
    import pytest

    from llmb_plugin_deepseek_r1.host.errors import HostError
    from llmb_plugin_deepseek_r1.host.tracking import wait_for

    record = _record(tmp_path, "78")
    _fake_slurm_tools(tmp_path / "bin", "", "")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    with pytest.raises(HostError, match="job 78 still UNKNOWN after 1 s"):
        wait_for(tmp_path, record, timeout_s=1.0)


def test_broken_weights_and_missing_image_are_found_before_submitting(tmp_path):
    from weights_fixtures import make_checkpoint

    model = make_checkpoint(tmp_path / "model", shards=2)
    shard = model / "model-00001-of-00002.safetensors"
    with open(shard, "r+b") as handle:
        handle.truncate(shard.stat().st_size - 1)
    env = job_environ(tmp_path, WEIGHT_CHECK="quick", MODEL_PATH=str(model), CONTAINER_RUNTIME="pyxis",
                      LLMB_EXECUTOR="local")
    env.pop("LLMB_JOB_ID")
    done = llmb(env, *RUN_ARGS)
    assert done.returncode == 1 and done.stdout == ""
    assert "model-00001-of-00002.safetensors: truncated" in done.stderr
    assert "tensorrt-llm+release+1.0.0rc1.sqsh does not exist" in done.stderr
    assert "nothing was submitted" in done.stderr
    assert not (tmp_path / "workloads/inference_deepseek-r1/experiments").exists()


def test_task_ranges_are_slurm_array_syntax():
    from llmb_plugin_deepseek_r1.host.submit import task_ranges

    assert task_ranges([7, 0, 1, 2, 5, 8]) == "0-2,5,7-8"
    assert task_ranges([3]) == "3"
    assert task_ranges(list(range(0, 1000, 4))) == ",".join(str(i) for i in range(0, 1000, 4))


def _scontrol_log(bin_dir: Path, *fail_on: str) -> Path:
    """A stand-in scontrol that logs its arguments and fails when they contain one of ``fail_on``."""
    bin_dir.mkdir(exist_ok=True)
    log = bin_dir / "calls"
    script = bin_dir / "scontrol"
    patterns = "|".join(f'*"{text}"*' for text in fail_on)
    script.write_text(f'#!/bin/sh\necho "$*" >> {log}\ncase "$*" in {patterns}) echo "no: $*" >&2; exit 1;; '
                      'esac\nexit 0\n')
    script.chmod(0o755)
    return log


class _Job:
    def __init__(self, job_id: str) -> None:
        self.job_id = job_id


def test_tasks_with_equal_changes_share_one_scontrol_call(tmp_path, monkeypatch):
    from llmb_plugin_deepseek_r1.host.submit import _retarget_tasks

    log = _scontrol_log(tmp_path / "bin", "never")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    plans = [plan("w_chat", 30), plan("w_gen", 100), plan("w_chat", 30), plan("w_gen", 100), plan("w", 100)]
    jobs = [_Job(f"77_{i}") for i in range(5)]
    assert _retarget_tasks(jobs, plans, 100, "w") == []
    assert log.read_text().splitlines() == ["update JobId=77_[0,2] TimeLimit=30 JobName=w_chat",
                                            "update JobId=77_[1,3] JobName=w_gen"]


def test_failed_shared_update_is_retried_per_task_and_warnings_name_the_task(tmp_path, monkeypatch):
    from llmb_plugin_deepseek_r1.host.submit import _retarget_tasks

    log = _scontrol_log(tmp_path / "bin", "77_[")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    plans = [plan("w_chat", 30), plan("w_chat", 30)]
    assert _retarget_tasks([_Job("77_0"), _Job("77_1")], plans, 100, "w") == []
    assert log.read_text().splitlines()[1:] == ["update JobId=77_0 TimeLimit=30 JobName=w_chat",
                                                "update JobId=77_1 TimeLimit=30 JobName=w_chat"]
    log.unlink()
    log = _scontrol_log(tmp_path / "bin", "77_[", "77_1 ")
    warnings = _retarget_tasks([_Job("77_0"), _Job("77_1")], plans, 100, "w")
    assert len(warnings) == 1 and warnings[0].startswith("scontrol update failed")
    assert warnings[0].endswith("(77_1: TimeLimit=30 JobName=w_chat)")


def test_records_are_what_json_dumps_writes(tmp_path):
    import json

    from llmb_plugin_deepseek_r1.host.contract import RunRequest
    from llmb_plugin_deepseek_r1.host.submit import Submitted, write_records

    request = RunRequest(workload="inference_deepseek-r1", model_size="671b", dtype="nvfp4", scale=4,
                         gpu_type="gb200", install_dir=tmp_path, env={})
    submitted = [Submitted(f"5_{i}", plan(f"w_{i}", 30), "slurm", tmp_path / f"5_{i}") for i in range(3)]
    folder = write_records(submitted, request, ["single", "-w", "x y"])
    for item in submitted:
        text = (folder / f"{item.job_id}.json").read_text()
        record = json.loads(text)
        assert text == json.dumps(record, indent=2) + "\n"
        assert record["job_ids"] == ["5_0", "5_1", "5_2"] and record["job_id"] == item.job_id
        assert record["command_line"] == "llmb-run single -w 'x y'"
