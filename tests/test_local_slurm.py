"""The local Slurm cluster (scripts/local-slurm.sh) does what the plugin's Slurm tests rely on.

Checked through Slurm itself: a GB200-shaped job (4 tasks, 4 GPUs, exclusive) schedules and its tasks see 4 GPU
ids (the exclusive batch step all of the node's),
accounting reports final states, scancel works, time limits reach the controller.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from slurm_cluster import (
    SCRIPT,
    SlurmCluster,
    gpu_count,
    run_slurm,
    sbatch,
    scontrol_job,
    squeue_state,
    state_dir,
    wait_sacct_state,
    wait_until,
)

GPU_JOB = """#!/bin/bash
echo "batch CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES"
srun bash -c 'echo "task $SLURM_PROCID CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES"'
"""


@pytest.fixture
def job_ids() -> Iterator[list[str]]:
    """Job ids a test submitted; whatever is still queued at the end is cancelled."""
    ids: list[str] = []
    yield ids
    if ids:
        run_slurm("scancel", *ids, check=False)


@pytest.fixture(scope="module")
def gpu_job(slurm_cluster: SlurmCluster, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """Run one exclusive 4-GPU, 4-task job to completion; return (job id, its output)."""
    work = tmp_path_factory.mktemp("gpu_job")
    script = work / "job.sh"
    script.write_text(GPU_JOB)
    out = work / "job.out"
    job_id = sbatch("--wait", f"--account={slurm_cluster.account}", f"--partition={slurm_cluster.gpu_partition}",
                    f"--gpus-per-node={slurm_cluster.gpus_per_node}", "--ntasks-per-node=4", "--nodes=1",
                    "--exclusive", "--time=5", "--job-name=llmb-local-slurm-gpu", f"--output={out}", str(script))
    return job_id, out.read_text()


def _cuda_ids(line: str) -> list[str]:
    return line.split("CUDA_VISIBLE_DEVICES=", 1)[1].strip().split(",")


def _running_cpu_job(cluster: SlurmCluster, job_ids: list[str], *extra: str) -> str:
    job_id = sbatch(f"--account={cluster.account}", f"--partition={cluster.cpu_partition}", "--ntasks=1",
                    "--output=/dev/null", *extra, "--wrap=sleep 300")
    job_ids.append(job_id)
    wait_until(lambda: squeue_state(job_id) == "RUNNING", 30, f"job {job_id} to run")
    return job_id


@pytest.mark.slurm
def test_node_idle_with_its_gpus_in_both_partitions(slurm_cluster: SlurmCluster) -> None:
    def idle_rows() -> list[list[str]] | None:
        out = run_slurm("sinfo", "-h", "-n", slurm_cluster.node, "-o", "%P|%t|%G").stdout
        rows = [line.split("|") for line in out.split()]
        return rows if rows and all(state == "idle" for _, state, _ in rows) else None

    rows = wait_until(idle_rows, 60, f"node {slurm_cluster.node} to be idle (jobs of other tests may run)")
    partitions = {part.rstrip("*"): gres for part, _, gres in rows}
    assert set(partitions) == {slurm_cluster.gpu_partition, slurm_cluster.cpu_partition}
    assert all(gpu_count(gres) == slurm_cluster.node_gpus >= 4 for gres in partitions.values()), partitions
    default = [part for part, _, _ in rows if part.endswith("*")]
    assert default == [f"{slurm_cluster.gpu_partition}*"]


@pytest.mark.slurm
def test_exclusive_four_gpu_job_sees_four_devices(gpu_job: tuple[str, str], slurm_cluster: SlurmCluster) -> None:
    _, output = gpu_job
    lines = output.splitlines()
    batch = [line for line in lines if line.startswith("batch ")]
    assert len(batch) == 1, output
    # --exclusive hands the batch step every GPU of the node; the srun step gets the 4 asked for.
    assert len(set(_cuda_ids(batch[0]))) == slurm_cluster.node_gpus, output
    tasks = sorted(line.split()[1] for line in lines if line.startswith("task "))
    assert tasks == ["0", "1", "2", "3"], output
    assert all(len(set(_cuda_ids(line))) == 4 for line in lines if line.startswith("task ")), output


@pytest.mark.slurm
def test_finished_job_is_completed_in_sacct_with_account_and_gpus(
    gpu_job: tuple[str, str], slurm_cluster: SlurmCluster
) -> None:
    job_id, _ = gpu_job
    rec = wait_sacct_state(job_id, "COMPLETED")
    assert rec["ExitCode"] == "0:0"
    assert rec["Account"] == slurm_cluster.account
    assert rec["Partition"] == slurm_cluster.gpu_partition
    assert f"gres/gpu={slurm_cluster.node_gpus}" in rec["AllocTRES"].split(","), rec


@pytest.mark.slurm
def test_scancel_of_running_job_gives_cancelled_in_sacct(slurm_cluster: SlurmCluster, job_ids: list[str]) -> None:
    job_id = _running_cpu_job(slurm_cluster, job_ids)
    run_slurm("scancel", job_id)
    rec = wait_sacct_state(job_id, "CANCELLED")
    assert rec["Partition"] == slurm_cluster.cpu_partition


@pytest.mark.slurm
def test_time_limit_is_visible_in_scontrol(slurm_cluster: SlurmCluster, job_ids: list[str]) -> None:
    job_id = _running_cpu_job(slurm_cluster, job_ids, "--time=1")
    job = scontrol_job(job_id)
    assert job["TimeLimit"] == "00:01:00", job
    assert job["JobState"] == "RUNNING", job


@pytest.mark.slurm
def test_unknown_account_is_rejected(slurm_cluster: SlurmCluster) -> None:
    proc = run_slurm("sbatch", "--account=llmb-no-such-account", "--output=/dev/null", "--wrap=true", check=False)
    assert proc.returncode != 0
    assert "account" in proc.stderr.lower(), proc.stderr


@pytest.mark.slurm
def test_start_when_running_is_a_quick_noop(slurm_cluster: SlurmCluster) -> None:
    if os.geteuid() != 0:
        pytest.skip("scripts/local-slurm.sh start needs root")
    pids = state_dir() / "pids"
    status = subprocess.run(["bash", str(SCRIPT), "status"], capture_output=True, text=True, timeout=30)
    if status.returncode != 0:
        pytest.skip(f"the running cluster was not started by scripts/local-slurm.sh ({pids} incomplete)")
    before = {p.name: p.read_text() for p in pids.iterdir()}
    proc = subprocess.run(["bash", str(SCRIPT), "start"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "already running" in proc.stdout
    assert {p.name: p.read_text() for p in pids.iterdir()} == before


def test_unknown_subcommand_names_it_and_the_accepted_ones() -> None:
    proc = subprocess.run(["bash", str(SCRIPT), "restart"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert "'restart'" in proc.stderr
    assert "install, start, stop, status, env" in proc.stderr


def test_env_before_configuration_says_to_start(tmp_path: Path) -> None:
    env = dict(os.environ, LLMB_SLURM_STATE=str(tmp_path / "state"))
    proc = subprocess.run(["bash", str(SCRIPT), "env"], capture_output=True, text=True, timeout=30, env=env)
    assert proc.returncode == 1
    assert str(tmp_path / "state") in proc.stderr and "start" in proc.stderr
    assert proc.stdout == ""


def test_status_of_unstarted_state_dir_is_stopped(tmp_path: Path) -> None:
    env = dict(os.environ, LLMB_SLURM_STATE=str(tmp_path / "state"), LLMB_SLURM_NODES="3")
    proc = subprocess.run(["bash", str(SCRIPT), "status"], capture_output=True, text=True, timeout=30, env=env)
    assert proc.returncode == 3
    assert proc.stdout.splitlines() == [f"{d}: stopped" for d in ("munged", "mariadbd", "slurmdbd", "slurmctld",
                                                                    "slurmd-n1", "slurmd-n2", "slurmd-n3")]


@pytest.mark.parametrize("var, value", [("LLMB_SLURM_NODES", "0"), ("LLMB_SLURM_CTLD_PORT", "69x"),
                                        ("LLMB_SLURM_CLUSTER", "Bad Name")])
def test_bad_setting_is_refused_naming_it(tmp_path: Path, var: str, value: str) -> None:
    env = dict(os.environ, LLMB_SLURM_STATE=str(tmp_path / "state"), **{var: value})
    proc = subprocess.run(["bash", str(SCRIPT), "status"], capture_output=True, text=True, timeout=30, env=env)
    assert proc.returncode == 2 and var in proc.stderr and value in proc.stderr
