"""Submission rules that need no Slurm: the nested-allocation guard and the local executor fallback (the job
runs the STAND-IN tests/fake_trtllm/trtllm-bench: TensorRT-LLM cannot run here)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from conftest import RUN_ARGS
from jobkit import job_environ
from llmb_plugin_deepseek_r1.host.contract import JobPlan, SlurmParams
from llmb_plugin_deepseek_r1.host.submit import common_name, group_for_arrays, slurm_parameters


def llmb(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["llmb-run", *args], env=env, capture_output=True, text=True, timeout=timeout,
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
