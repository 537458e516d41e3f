"""End to end on the project's real local Slurm (scripts/local-slurm.sh): `llmb-run single` submits through
submitit, the job body runs in the batch step and starts the benchmark with srun (runtime `none`), and the
benchmark is the STAND-IN tests/fake_trtllm/trtllm-bench, because TensorRT-LLM cannot run here. Everything is
checked through Slurm itself (scontrol, sacct) and through the files the jobs leave."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import LLMB_RUN, PYTHON, REPO, RUN_ARGS
from jobkit import job_environ, load
from slurm_cluster import scontrol_job, slurm_env, wait_sacct_state, wait_until

pytestmark = pytest.mark.slurm


def llmb(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LLMB_RUN, *args], env=env, capture_output=True, text=True, timeout=timeout,
                          cwd=env["LLMB_INSTALL"])


def slurm_job_env(install: Path, **extra: str) -> dict[str, str]:
    env = slurm_env(job_environ(install, SLURM_MPI_TYPE="none", SBATCH_ACCOUNT="llmb", SBATCH_PARTITION="debug",
                                SBATCH_GPUS_PER_NODE="4", **extra))
    env.pop("LLMB_JOB_ID")
    return env


def submit(env: dict[str, str], *extra: str) -> list[dict]:
    done = llmb(env, *RUN_ARGS, "--json", *extra)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["jobs"]


def test_single_submits_one_job_per_use_case_and_results_land(slurm_cluster, tmp_path):
    env = slurm_job_env(tmp_path, USE_CASES="chat:64/32 reasoning:48/16")
    jobs = submit(env, "--executor", "slurm")
    assert [j["use_cases"] for j in jobs] == [["chat"], ["reasoning"]]
    for job in jobs:
        record = wait_sacct_state(job["job_id"], "COMPLETED", timeout=120)
        assert record["State"] == "COMPLETED"
        info = scontrol_job(job["job_id"])
        assert info["TimeLimit"] == "00:20:00"  # derived: 15 min start-up + a tiny run, rounded up to 5 min
        assert info["NumTasks"] == "4" and info["NumNodes"] == "1"
        assert info["JobName"] == f"inference_deepseek-r1_671b_nvfp4_{job['use_cases'][0]}"
        assert "gres/gpu=4" in info.get("TRES", "") or "gpu:4" in info.get("TresPerNode", "")
    experiments = tmp_path / "workloads/inference_deepseek-r1/experiments"
    for job, name in zip(jobs, ["chat", "reasoning"]):
        stem = experiments / f"DeepSeek-R1_TP4_EP4_PP1_CON-1_{name}" / \
            f"DeepSeek-R1_TP4_EP4_PP1_CON-1_{name}_streaming-on_{job['job_id']}"
        result = load(Path(f"{stem}.json"))
        assert result["verdict"]["status"] == "VALID", result["verdict"]
        assert "PERFORMANCE OVERVIEW" in Path(f"{stem}.out").read_text()
        assert result["provenance"]["nodes"] and result["job_id"] == job["job_id"]
    shown = llmb(env, "jobs", "show", jobs[0]["job_id"])
    assert shown.returncode == 0 and "VALID" in shown.stdout and "output tok/s/GPU" in shown.stdout
    listed = llmb(env, "jobs", "list")
    assert all(j["job_id"] in listed.stdout for j in jobs)
    log = llmb(env, "jobs", "log", jobs[1]["job_id"], "--follow", "--timeout", "30")
    assert log.returncode == 0 and f"[llmb] reasoning job {jobs[1]['job_id']}: VALID" in log.stdout


def test_one_allocation_and_time_limit_sum(slurm_cluster, tmp_path):
    env = slurm_job_env(tmp_path, USE_CASES="chat:64/32 summarization:96/16")
    [job] = submit(env, "--one-allocation", "--wait")
    info = scontrol_job(job["job_id"])
    assert info["TimeLimit"] == "00:40:00" and info["JobName"] == "inference_deepseek-r1_671b_nvfp4"  # 20 + 20
    assert wait_sacct_state(job["job_id"], "COMPLETED")["State"] == "COMPLETED"
    status = load(tmp_path / f"workloads/inference_deepseek-r1/experiments/.llmb/jobs/{job['job_id']}.json")
    assert [r["verdict"] for r in status["results"]] == ["VALID", "VALID"]


def test_sweep_is_one_sbatch_array_with_per_task_limits(slurm_cluster, tmp_path):
    # CONCURRENCY=1: 20 requests one after another; OSL 2000 makes the derived limit 30 min (latency bound)
    env = slurm_job_env(tmp_path, USE_CASES="chat:64/32 generation:64/2000", MAX_BATCH_SIZE="8,16", CONCURRENCY="1")
    jobs = submit(env)
    assert len(jobs) == 4
    array_ids = {j["job_id"].split("_")[0] for j in jobs}
    assert len(array_ids) == 1 and all("_" in j["job_id"] for j in jobs)
    limits = {j["job_id"]: scontrol_job(j["job_id"])["TimeLimit"] for j in jobs}
    assert sorted(limits.values()) == ["00:20:00", "00:20:00", "00:30:00", "00:30:00"]
    names = {j["job_id"]: scontrol_job(j["job_id"])["JobName"] for j in jobs}
    assert names == {j["job_id"]: j["name"] for j in jobs}  # set per group of tasks, one scontrol call each
    for job in jobs:
        assert wait_sacct_state(job["job_id"], "COMPLETED", timeout=120)["State"] == "COMPLETED"


def test_cancel_a_running_job(slurm_cluster, tmp_path):
    env = slurm_job_env(tmp_path, FAKE_TRTLLM_DELAY="120")
    [job] = submit(env)
    wait_until(lambda: scontrol_job(job["job_id"]).get("JobState") == "RUNNING" or None, 60, "job running")
    done = llmb(env, "jobs", "cancel", job["job_id"])
    assert done.returncode == 0, done.stderr
    assert wait_sacct_state(job["job_id"], "CANCELLED", timeout=60)["State"].startswith("CANCELLED")


def test_benchmark_killed_mid_run_fails_with_logs_kept(slurm_cluster, tmp_path):
    env = slurm_job_env(tmp_path, FAKE_TRTLLM_DELAY="120")
    [job] = submit(env)
    out_dir = tmp_path / "workloads/inference_deepseek-r1/experiments/DeepSeek-R1_TP4_EP4_PP1_CON-1_chat"
    out = out_dir / f"DeepSeek-R1_TP4_EP4_PP1_CON-1_chat_streaming-on_{job['job_id']}.out"
    wait_until(lambda: ("DATASET DETAILS" in out.read_text()) if out.exists() else None, 60, "benchmark started")
    subprocess.run(["scancel", "--signal=KILL", f"{job['job_id']}.0"], env=env, check=True)
    assert wait_sacct_state(job["job_id"], "FAILED", timeout=90)["State"] == "FAILED"
    result = load(out.with_suffix(".json"))
    assert result["verdict"]["status"] == "FAILED"
    assert "DATASET DETAILS" in out.read_text() and out.with_suffix(".err").exists()
    waited = llmb(env, "jobs", "wait", job["job_id"], "--timeout", "30")
    assert waited.returncode == 4 and "FAILED" in waited.stdout  # the benchmark failed


def test_concurrent_jobs_never_overwrite_each_other(slurm_cluster, tmp_path):
    env = slurm_job_env(tmp_path, FAKE_TRTLLM_DELAY="1")
    first = submit(env, "--executor", "local")
    second = submit(env, "--executor", "local")
    for job in first + second:
        done = llmb(env, "jobs", "wait", job["job_id"], "--timeout", "120")
        assert done.returncode == 0, done.stdout + done.stderr
    out_dir = tmp_path / "workloads/inference_deepseek-r1/experiments/DeepSeek-R1_TP4_EP4_PP1_CON-1_chat"
    results = sorted(out_dir.glob("*[0-9].json"))
    assert len(results) == 2 and len(list(out_dir.glob("*.config.yml"))) == 2
    assert {load(p)["verdict"]["status"] for p in results} == {"VALID"}


def test_launch_sh_direct_method(slurm_cluster, tmp_path):
    env = slurm_job_env(tmp_path, LLMB_PYTHON=PYTHON, USE_CASES="chat:64/32")
    done = subprocess.run(["sbatch", "--parsable", "--wait", "-A", "llmb", "-p", "debug", "--gpus-per-node=4",
                           "-o", str(tmp_path / "launch_%j.log"), str(REPO / "launch.sh")], env=env,
                          capture_output=True, text=True, timeout=180, cwd=tmp_path)
    job_id = done.stdout.strip().split(";")[0]
    log = (tmp_path / f"launch_{job_id}.log").read_text()
    assert done.returncode == 0, log
    assert scontrol_job(job_id)["JobName"] == "inference_deepseek-r1_671b_nvfp4"
    result = load(tmp_path / "workloads/inference_deepseek-r1/experiments/DeepSeek-R1_TP4_EP4_PP1_CON-1_chat" /
                  f"DeepSeek-R1_TP4_EP4_PP1_CON-1_chat_streaming-on_{job_id}.json")
    assert result["verdict"]["status"] == "VALID" and "[llmb] chat job" in log
