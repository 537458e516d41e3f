"""NVIDIA's own llmb-run drives this recipe on the project's real local Slurm (scripts/local-slurm.sh).

The wheels of llmb-run 1.2.0 (`single`, release 25.07, cluster_config schema 1) and 1.15.0 (`submit`, schema 2)
find the recipe by its metadata.yaml under `llmb_repo` (this checkout) and submit `launch.sh` with sbatch;
launch.sh finds the workload's Python through cluster_config.yaml. The benchmark is the STAND-IN
tests/fake_trtllm/trtllm-bench, because TensorRT-LLM cannot run here.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import LLMB_RUN
from jobkit import make_model_dir
from nvidia_llmb import WORKLOAD, cluster_config, nvidia_llmb_run, shell_environ  # noqa: F401 (fixture)
from slurm_cluster import slurm_env, wait_sacct_state

pytestmark = pytest.mark.slurm
TASK = ["-w", WORKLOAD, "-s", "671b", "--dtype", "nvfp4", "--scale", "4"]


def job_knobs(install: Path) -> dict[str, str]:
    """What cluster_config.yaml's environment gives every job: one small use case, the host runtime."""
    return {"USE_CASES": "chat:64/32", "NUM_REQUESTS": "20", "CONTAINER_RUNTIME": "none", "WEIGHT_CHECK": "skip",
            "SLURM_MPI_TYPE": "none", "SBATCH_TIMELIMIT": "20",
            "MODEL_PATH": str(make_model_dir(install / "models" / "DeepSeek-R1-FP4"))}


def nvidia_job_id(stdout: str) -> str:
    match = re.search(r"^SUBMITTED: .*jobid=(\d+)", stdout, re.MULTILINE)
    assert match, f"no SUBMITTED line with jobid= in NVIDIA llmb-run's output:\n{stdout}"
    return match.group(1)


def result_dir(install: Path) -> Path:
    return install / "workloads" / WORKLOAD / "experiments" / "DeepSeek-R1_TP4_EP4_PP1_CON-1_chat"


def layout(install: Path, job_id: str) -> tuple[list[str], Any]:
    """A run's result files (names with the job id as <id>) and the key structure of its result document
    (llmb-config_<jobid>.yaml, the launcher's record, is not a result file)."""
    names = sorted(p.name.replace(job_id, "<id>") for p in result_dir(install).glob(f"DeepSeek-R1_*_{job_id}.*"))
    doc = json.loads((result_dir(install) / f"DeepSeek-R1_TP4_EP4_PP1_CON-1_chat_streaming-on_{job_id}.json")
                     .read_text())

    def keys(value: Any) -> Any:
        return {k: keys(v) for k, v in value.items()} if isinstance(value, dict) else type(value).__name__

    return names, {k: keys(v) for k, v in doc.items() if k not in ("job_id",)}


def verdict(install: Path, job_id: str) -> str:
    doc = json.loads((result_dir(install) / f"DeepSeek-R1_TP4_EP4_PP1_CON-1_chat_streaming-on_{job_id}.json")
                     .read_text())
    return doc["verdict"]["status"]


def our_native_run(install: Path, env: dict[str, str]) -> str:
    done = subprocess.run([LLMB_RUN, "submit", *TASK, "--json", "--executor", "slurm"], env=env, cwd=install,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    [job] = json.loads(done.stdout)["jobs"]
    wait_sacct_state(job["job_id"], "COMPLETED", timeout=300)
    return job["job_id"]


def nvidia_run(launcher, tmp_path: Path, version: str, command: str, schema: int
               ) -> tuple[Path, dict[str, str], str]:
    """NVIDIA's llmb-run VERSION (``launcher``: the nvidia_llmb_run fixture) `COMMAND` of the recipe, from a
    fresh install whose cluster_config.yaml has ``schema``; (install, environment, job id) once it submitted."""
    install = tmp_path / "install"
    install.mkdir()
    cluster_config(install, schema, environment=job_knobs(install))
    env = slurm_env(shell_environ())
    done = subprocess.run([str(launcher(version)), command, *TASK], env=env, cwd=install,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return install, env, nvidia_job_id(done.stdout)


def test_nvidia_llmb_run_1_15_submit_runs_the_recipe_like_our_own_runs(slurm_cluster, nvidia_llmb_run, tmp_path):
    install, env, job_id = nvidia_run(nvidia_llmb_run, tmp_path, "1.15.0", "submit", schema=2)
    record = wait_sacct_state(job_id, "COMPLETED", timeout=300)
    # --exclusive (launch.sh's header) allocates every GPU of the node (8 on the two-node test cluster)
    assert (record["Partition"], record["Account"]) == ("debug", "llmb")
    assert f"gres/gpu={slurm_cluster.node_gpus}" in record["AllocTRES"]
    log = (install / "workloads" / WORKLOAD / f"slurm-{job_id}.out").read_text()
    assert "launch.sh: using Python" in log and f"workloads.config.{WORKLOAD}.venv_path" in log
    assert verdict(install, job_id) == "VALID"
    ours = our_native_run(install, env)
    assert verdict(install, ours) == "VALID"
    assert layout(install, job_id) == layout(install, ours)
    ours_link = install / "workloads" / WORKLOAD / f"slurm-{ours}.out"  # our Slurm log where NVIDIA's is
    assert ours_link.is_symlink() and f"chat job {ours}: VALID" in ours_link.read_text()
    config = yaml.safe_load((result_dir(install) / f"llmb-config_{ours}.yaml").read_text())
    assert list(config) == ["job_info", "workload_info", "model_info", "cluster_info", "container_info", "job_config"]
    assert config["job_info"]["job_id"] == ours and config["cluster_info"]["slurm_gpu_partition"] == "debug"
    # Our job ran with the workload's venv (cluster_config.yaml workloads.config.<key>.venv_path) too.
    [script] = (install / "workloads" / WORKLOAD / "experiments" / ".llmb" / "submitit").glob(
        f"{ours}/{ours}_submission.sh")
    assert f"{install}/venvs/{WORKLOAD}_venv/bin/python3 -u -m submitit" in script.read_text()


def test_nvidia_llmb_run_1_2_single_runs_the_recipe(slurm_cluster, nvidia_llmb_run, tmp_path):
    install, env, job_id = nvidia_run(nvidia_llmb_run, tmp_path, "1.2.0", "single", schema=1)
    wait_sacct_state(job_id, "COMPLETED", timeout=300)
    assert "launch.sh: using Python" in (install / f"slurm-{job_id}.out").read_text()  # 1.2 logs to its cwd
    assert verdict(install, job_id) == "VALID"
    names, _ = layout(install, job_id)
    assert names == sorted(f"DeepSeek-R1_TP4_EP4_PP1_CON-1_chat_streaming-on_<id>{suffix}" for suffix in
                           (".out", ".err", ".config.yml", ".report.json", ".json"))
