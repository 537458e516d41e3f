"""Multi-node runs on the project's real two-node local Slurm (scripts/local-slurm.sh: nodes n1 and n2, 8 pretend
GPUs each, PMIx from libpmix-dev). `llmb-run` submits through submitit; the job body probes every node, then starts
one `srun --mpi=pmix` over both nodes. The benchmark is the STAND-IN tests/fake_trtllm/trtllm-bench (TensorRT-LLM
cannot run here): started through the stand-in trtllm-llmapi-launch it checks that it runs as the full world Slurm
started (ranks, PMIx ranks, node list) and fails as the real tool does otherwise. GPUs are read by the stand-in
tests/fake_nvidia/nvidia-smi, so a node can be made to lose its GPUs."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import LLMB_RUN, REPO
from jobkit import job_environ, load
from slurm_cluster import scontrol_job, slurm_env, wait_sacct_state

pytestmark = pytest.mark.slurm
FAKE_NVIDIA = REPO / "tests" / "fake_nvidia"
EXPERIMENTS = Path("workloads/inference_deepseek-r1/experiments")


def env_for(install: Path, gpu_type: str, gpus_per_node: int, **extra: str) -> dict[str, str]:
    env = slurm_env(job_environ(install, SLURM_MPI_TYPE="pmix", SBATCH_ACCOUNT="llmb", SBATCH_PARTITION="debug",
                                SBATCH_GPUS_PER_NODE=str(gpus_per_node), GPU_TYPE=gpu_type,
                                FAKE_NVIDIA_SMI_MODEL=gpu_type, FAKE_NVIDIA_SMI_COUNT=str(gpus_per_node),
                                FAKE_TLLM_WORLD_DIR=str(install / "world"), **extra))
    env["PATH"] = f"{FAKE_NVIDIA}{os.pathsep}{env['PATH']}"
    env.pop("LLMB_JOB_ID")
    return env


def llmb(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LLMB_RUN, *args], env=env, capture_output=True, text=True, timeout=timeout,
                          cwd=env["LLMB_INSTALL"])


def submit(env: dict[str, str], *args: str) -> list[dict]:
    done = llmb(env, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["jobs"]


def result_of(install: Path, name: str, job_id: str) -> tuple[dict, Path]:
    stem = install / EXPERIMENTS / f"{name}_chat" / f"{name}_chat_streaming-on_{job_id}"
    return load(Path(f"{stem}.json")), stem


GB200 = ["single", "-w", "inference_deepseek-r1", "-s", "671b", "--dtype", "nvfp4", "--scale", "8"]


def test_gb200_scale_8_on_two_nodes_is_valid_sweep_array_and_jobs_list(two_node_cluster, tmp_path):
    env = env_for(tmp_path, "gb200", 4, MAX_BATCH_SIZE="8,16")
    jobs = submit(env, *GB200)
    assert len(jobs) == 2 and len({j["job_id"].split("_")[0] for j in jobs}) == 1  # one array of 2-node tasks
    for job in jobs:
        assert wait_sacct_state(job["job_id"], "COMPLETED", timeout=120)["State"] == "COMPLETED"
        info = scontrol_job(job["job_id"])
        assert info["NumNodes"] == "2" and info["NumTasks"] == "8" and info["NodeList"] == "n[1-2]"
        result, stem = result_of(tmp_path, "DeepSeek-R1_TP8_EP8_PP1_CON-1", job["job_id"])
        assert result["verdict"]["status"] == "VALID", result["verdict"]
        world = result["provenance"]["world"]
        assert world["nodes"] == ["n1", "n2"] and world["gpus_per_node"] == 4 and world["world_size"] == 8
        head = result["measured"]["headline"]
        assert head["output_tok_s_gpu"] == pytest.approx(head["total_output_throughput_tok_s"] / 8, rel=1e-3)
        checks = {c["name"]: c["status"] for c in result["provenance"]["preflight"]}
        assert checks["node n1 gpu_count"] == checks["node n2 gpu_count"] == "ok"
        assert checks["node n2 dataset"] == checks["node n2 model_dir"] == "ok"
        assert "MPI world: 8 ranks on 2 node(s) (n1, n2), 4 per node" in Path(f"{stem}.out").read_text()
    listed = llmb(env, "jobs", "list")
    assert listed.returncode == 0 and all(j["job_id"] in listed.stdout for j in jobs)
    assert listed.stdout.count("n[1-2]") >= 2, listed.stdout


def test_h100_fp8_scale_16_on_two_nodes_of_eight_is_valid(two_node_cluster, tmp_path):
    env = env_for(tmp_path, "h100", 8, PROFILE="26.05", FAKE_TRTLLM_VERSION="1.1.0rc5",  # the H100 profile's image
                  CONCURRENCY="8")
    [job] = submit(env, "submit", "-w", "inference_deepseek-r1", "--model-size", "671b", "-d", "fp8",
                   "--scale", "16")
    assert wait_sacct_state(job["job_id"], "COMPLETED", timeout=120)["State"] == "COMPLETED"
    info = scontrol_job(job["job_id"])
    assert info["NumNodes"] == "2" and info["NumTasks"] == "16"
    result, _ = result_of(tmp_path, "DeepSeek-R1_TP8_EP8_PP2_CON8", job["job_id"])
    assert result["verdict"]["status"] == "VALID", result["verdict"]
    assert result["provenance"]["world"] == {"nodes": ["n1", "n2"], "node_count": 2, "gpus_per_node": 8,
                                             "world_size": 16, "tp": 8, "pp": 2, "ep": 8}
    head = result["measured"]["headline"]
    assert head["output_tok_s_gpu"] == pytest.approx(head["total_output_throughput_tok_s"] / 16, rel=1e-3)


def failed_result(env: dict[str, str], install: Path, name: str) -> tuple[dict, Path]:
    [job] = submit(env, *GB200)
    assert wait_sacct_state(job["job_id"], "FAILED", timeout=120)["State"] == "FAILED"
    result, stem = result_of(install, name, job["job_id"])
    assert result["verdict"]["status"] == "FAILED"
    return result, stem


def test_node_without_gpus_stops_before_the_benchmark_naming_it(two_node_cluster, tmp_path):
    env = env_for(tmp_path, "gb200", 4, FAKE_NVIDIA_SMI_NODE_COUNTS="n2=0")
    result, stem = failed_result(env, tmp_path, "DeepSeek-R1_TP8_EP8_PP1_CON-1")
    verdict = result["verdict"]
    assert verdict["classification"] == "preflight_error" and verdict["node"] == "n2", verdict
    assert "node n2: no GPUs found" in verdict["reasons"][0] and "No devices were found" in verdict["reasons"][0]
    assert result["attempts"] == [] and Path(f"{stem}.out").read_text() == ""  # the benchmark never started
    assert "preflight node n1 gpu_count: ok" in Path(f"{stem}.err").read_text()  # n1's view is kept


def test_rank_crash_on_second_node_ends_the_step_and_is_named(two_node_cluster, tmp_path):
    env = env_for(tmp_path, "gb200", 4, FAKE_TLLM_FAIL_RANK="5", FAKE_TLLM_RANK_FAULT="crash")
    result, stem = failed_result(env, tmp_path, "DeepSeek-R1_TP8_EP8_PP1_CON-1")
    verdict = result["verdict"]
    assert verdict["classification"] == "cuda_error" and (verdict["node"], verdict["rank"]) == ("n2", 5), verdict
    assert "rank 5 on node n2 failed first: Exited with exit code 1" in verdict["reasons"][0]
    err = Path(f"{stem}.err").read_text()
    assert "illegal memory access was encountered (rank 5 on n2)" in err
    assert "mpi_rank: 0" in err and "rank0 run trtllm-bench" in err  # node n1's ranks' output intact
    assert result["attempts"][0]["outcome"]["timed_out"] is False  # ended by srun, not by the time limit


def test_rank_hanging_on_second_node_is_caught_by_the_limit(two_node_cluster, tmp_path):
    env = env_for(tmp_path, "gb200", 4, FAKE_TLLM_FAIL_RANK="6", FAKE_TLLM_RANK_FAULT="hang", BENCH_TIMEOUT="20")
    result, stem = failed_result(env, tmp_path, "DeepSeek-R1_TP8_EP8_PP1_CON-1")
    verdict = result["verdict"]
    assert verdict["classification"] == "timeout", verdict
    assert any("hung" in r and "n1, n2" in r for r in verdict["reasons"]), verdict
    assert "Waiting for 8 MPI ranks" in Path(f"{stem}.out").read_text()  # rank 0 (n1) output intact
    assert "rank6 on n2: stuck" in Path(f"{stem}.err").read_text()
