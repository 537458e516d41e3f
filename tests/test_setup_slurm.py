"""``setup --slurm``: the heavy steps as one job on the CPU partition of the project's real local Slurm."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from llmb_plugin_deepseek_r1.setup.slurm import sbatch_environment
from conftest import LLMB_RUN
from slurm_cluster import sacct_record, wait_sacct_state, wait_until
from test_setup_support import IMAGE_NAME, make_hf_cache, run_setup, setup_env, statuses

WORKLOAD = "inference_deepseek-r1"


def test_sbatch_environment_drops_sbatch_input_variables() -> None:
    env = {"SBATCH_PARTITION": "gpu", "SBATCH_TIMELIMIT": "5", "SBATCH_ACCOUNT": "a", "HF_TOKEN": "t", "PATH": "/x",
           "SLURM_CONF": "/etc/slurm/slurm.conf"}
    assert sbatch_environment(env) == {"HF_TOKEN": "t", "PATH": "/x", "SLURM_CONF": "/etc/slurm/slurm.conf"}


def test_dry_run_with_slurm_shows_the_job_it_would_submit(tmp_path: Path) -> None:
    (tmp_path / "cluster_config.yaml").write_text("slurm:\n  account: llmb\n  cpu_partition: cpu\n")
    proc = run_setup(setup_env(tmp_path / "install", None), "--slurm", "--dry-run", "--time", "2:00:00",
                     cwd=tmp_path)
    doc = json.loads(proc.stdout)
    assert proc.returncode == 0, proc.stderr
    assert statuses(doc) == {"layout": "planned", "weights": "planned", "image": "planned", "datasets": "planned"}
    # The host's own submission parameters: the setup job goes through the same code as benchmark jobs.
    assert doc["slurm"]["would_submit"] == {"job_name": "inference_deepseek-r1_setup", "partition": "cpu",
                                            "time": 120, "nodes": 1, "ntasks_per_node": 1, "use_srun": False,
                                            "signal_delay_s": 60, "account": "llmb",
                                            "additional_parameters": {"cpus_per_task": "8"}}
    assert all(s["detail"].startswith("[in a Slurm job on partition cpu] ") for s in doc["steps"][1:])
    assert not (tmp_path / "install").exists()


@pytest.mark.slurm
@pytest.mark.skipif(shutil.which("mksquashfs") is None, reason="needs squashfs-tools")
def test_heavy_steps_run_as_a_cpu_job_and_a_waited_rerun_skips_them(slurm_cluster, tmp_path: Path) -> None:
    hf = tmp_path / "hf"
    make_hf_cache(hf / "hub")
    (tmp_path / "cluster_config.yaml").write_text(
        f"slurm:\n  account: {slurm_cluster.account}\n  gpu_partition: {slurm_cluster.gpu_partition}\n"
        f"  cpu_partition: {slurm_cluster.cpu_partition}\n")
    install = tmp_path / "install"
    # SBATCH_PARTITION (the GPU partition, as cluster_config sets it for benchmarks) must not move the job.
    env = setup_env(install, hf, SBATCH_PARTITION=slurm_cluster.gpu_partition)
    proc = run_setup(env, "--slurm", "--time", "10", cwd=tmp_path)
    doc = json.loads(proc.stdout)
    assert proc.returncode == 0, proc.stderr
    assert statuses(doc) == {"layout": "done", "weights": "submitted", "image": "submitted", "datasets": "submitted"}
    job_id = doc["slurm"]["slurm_job_id"]
    assert f"follow it with: tail -f {doc['slurm']['log']}" in proc.stderr
    assert doc["next"].startswith("wait for the setup job (see above), then: USE_CASES=reasoning:1000/1000 llmb-run")
    listed = subprocess.run([LLMB_RUN, "jobs", "list", "--json"], env=env, cwd=tmp_path, capture_output=True,
                            text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert {"job_id": job_id, "name": "inference_deepseek-r1_setup"}.items() <= \
        next(j for j in json.loads(listed.stdout) if j["job_id"] == job_id).items()
    record = wait_sacct_state(job_id, "COMPLETED", timeout=180)
    assert record["Partition"] == slurm_cluster.cpu_partition and record["Account"] == slurm_cluster.account
    wdir = install / "workloads" / WORKLOAD
    assert (install / "images" / IMAGE_NAME).is_file() and (wdir / "DeepSeek-R1-FP4" / ".llmb-manifest.json").is_file()
    assert (wdir / "dataset_chat_128_128.txt.meta.json").is_file()
    shown = subprocess.run([LLMB_RUN, "jobs", "show", job_id], env=env, cwd=tmp_path, capture_output=True, text=True,
                           timeout=60)  # the workload's summary of its setup job: one line per step
    assert shown.returncode == 0, shown.stderr
    assert f"{job_id}: COMPLETED" in shown.stdout and "  datasets: done: " in shown.stdout

    proc = run_setup(env, "--slurm", "--wait", "--wait-timeout", "90", "--time", "10", cwd=tmp_path, timeout=120)
    doc = json.loads(proc.stdout)
    assert proc.returncode == 0, proc.stderr
    assert statuses(doc) == {"layout": "skipped", "weights": "skipped", "image": "skipped", "datasets": "skipped"}
    second = doc["slurm"]["slurm_job_id"]
    assert second != job_id
    wait_until(lambda: (sacct_record(second) or {}).get("Partition") or None, 30, "the second job's record")
    assert sacct_record(second)["Partition"] == slurm_cluster.cpu_partition
