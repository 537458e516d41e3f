"""The container layer: exact argv for pyxis, docker and none (pure functions)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from llmb_plugin_deepseek_r1.planning.runtime import container_environment, launch_argv, mounts
from test_trtllm import make_spec

BENCH = ["trtllm-llmapi-launch", "trtllm-bench", "-m", "DeepSeek-R1", "--dataset", "/w/data set.txt"]


def test_pyxis_argv_quotes_the_command_for_bash():
    spec = make_spec(runtime="pyxis", image="/i/images/tensorrt-llm+release+1.0.0rc1.sqsh")
    assert launch_argv(spec, BENCH, under_slurm=True) == [
        "srun", "--mpi=pmix", "--nodes=1", "--ntasks-per-node=4", "--kill-on-bad-exit=1",
        "--container-image=/i/images/tensorrt-llm+release+1.0.0rc1.sqsh",
        "--container-mounts=/i/workloads/inference_deepseek-r1:/i/workloads/inference_deepseek-r1,"
        "/w/DeepSeek-R1-FP4:/w/DeepSeek-R1-FP4:ro",
        "--container-writable", "--no-container-mount-home",
        "bash", "-c", "trtllm-llmapi-launch trtllm-bench -m DeepSeek-R1 --dataset '/w/data set.txt'"]
    assert shlex.split(launch_argv(spec, BENCH, under_slurm=True)[-1]) == BENCH


def test_pyxis_needs_slurm():
    with pytest.raises(ValueError, match="needs a Slurm allocation"):
        launch_argv(make_spec(runtime="pyxis"), BENCH, under_slurm=False)


def test_none_runtime_with_and_without_slurm():
    spec = make_spec(runtime="none", mpi_type="none")
    assert launch_argv(spec, BENCH, under_slurm=True) == [
        "srun", "--mpi=none", "--nodes=1", "--ntasks-per-node=4", "--kill-on-bad-exit=1", "bash", "-c",
        shlex.join(BENCH)]
    assert launch_argv(spec, BENCH, under_slurm=False) == BENCH[1:]  # trtllm-bench spawns its own workers


def test_docker_argv_passes_only_named_environment():
    spec = make_spec(runtime="docker", image="nvcr.io/nvidia/tensorrt-llm/release:1.0.0rc1",
                     model_dir=Path("/i/workloads/inference_deepseek-r1/DeepSeek-R1-FP4"))
    argv = launch_argv(spec, BENCH, under_slurm=False, env_names=["NCCL_DEBUG", "HF_TOKEN"])
    assert argv == ["docker", "run", "--rm", "--gpus", "all", "--ipc=host", "--ulimit", "memlock=-1", "--ulimit",
                    "stack=67108864", "-v", "/i/workloads/inference_deepseek-r1:/i/workloads/inference_deepseek-r1",
                    "-e", "HF_TOKEN", "-e", "NCCL_DEBUG", "nvcr.io/nvidia/tensorrt-llm/release:1.0.0rc1", "bash",
                    "-c", shlex.join(BENCH[1:])]


def test_container_environment_filters_secrets():
    env = {"NCCL_DEBUG": "INFO", "TRTLLM_ENABLE_PDL": "1", "HF_TOKEN": "x", "HOME": "/root",
           "LLMB_INSTALL": "/i", "CUDA_API_KEY": "k"}
    assert container_environment(env) == {"NCCL_DEBUG": "INFO", "TRTLLM_ENABLE_PDL": "1", "LLMB_INSTALL": "/i"}
    assert container_environment(env, ("HF_TOKEN",))["HF_TOKEN"] == "x"


def test_model_inside_workload_is_not_mounted_twice():
    spec = make_spec(model_dir=Path("/i/workloads/inference_deepseek-r1/DeepSeek-R1-FP4"))
    assert mounts([spec, spec]) == ["/i/workloads/inference_deepseek-r1:/i/workloads/inference_deepseek-r1"]
