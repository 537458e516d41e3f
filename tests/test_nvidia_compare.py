"""Same cluster_config.yaml, same shell, same flags: this project's dry run shows, and its submission sends, the
partition, account, GRES, time limit, job name and job environment that NVIDIA's llmb-run 1.15.0 sends to sbatch.

Both submissions go to the STAND-IN tests/fake_sbatch/sbatch, which records argv, environment and batch script
(NVIDIA passes Slurm settings as SBATCH_* variables and flags; submitit as #SBATCH lines): the test compares what
sbatch would effectively apply (flags > environment > script, as sbatch itself ranks them).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conftest import LLMB_RUN, REPO
from nvidia_llmb import WORKLOAD, cluster_config, nvidia_llmb_run, shell_environ  # noqa: F401 (fixture)

FAKE_SBATCH = REPO / "tests" / "fake_sbatch"
TASK = ["-w", WORKLOAD, "-s", "671b", "--dtype", "nvfp4", "--scale", "4"]
SBATCH_VARS = {"SBATCH_PARTITION": "partition", "SBATCH_ACCOUNT": "account", "SBATCH_GPUS_PER_NODE": "gpus-per-node",
               "SBATCH_TIMELIMIT": "time", "SBATCH_JOB_NAME": "job-name"}
SHORT = {"-p": "partition", "-A": "account", "-J": "job-name", "-t": "time", "-N": "nodes"}
JOB_VARS = ("MODEL_SIZE", "DTYPE", "JOB_TOTAL_GPUS", "GPU_TYPE", "LLMB_INSTALL", "LLMB_CONTAINER_ENV", "USE_CASES",
            "NUM_REQUESTS", "STREAMING", "CONTAINER_RUNTIME", "WEIGHT_CHECK", "HF_TOKEN", "NCCL_DEBUG")


def _options(words: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    items = iter(words)
    for word in items:
        if word.startswith("--"):
            key, sep, value = word[2:].partition("=")
            found[key] = value if sep else "true"
        elif word in SHORT:
            found[SHORT[word]] = next(items)
    return found


def _minutes(value: str) -> int:
    parts = [int(p) for p in value.split(":")]
    return {1: lambda: parts[0], 2: lambda: parts[0], 3: lambda: parts[0] * 60 + parts[1]}[len(parts)]()


def effective(record: dict[str, Any]) -> dict[str, Any]:
    """What sbatch would apply: #SBATCH lines, overridden by SBATCH_* variables, overridden by flags."""
    script = [w for line in record["script"].splitlines() if line.startswith("#SBATCH")
              for w in line.split()[1:]]
    settings = _options(script)
    settings.update({SBATCH_VARS[k]: v for k, v in record["env"].items() if k in SBATCH_VARS})
    settings.update(_options(record["argv"]))
    return {"partition": settings.get("partition"), "account": settings.get("account"),
            "gres": settings.get("gpus-per-node"), "time_min": _minutes(settings["time"]),
            "job_name": settings.get("job-name").strip("'\"")}


@pytest.mark.parametrize("schema", [1, 2])
def test_dry_run_and_submission_match_nvidia_llmb_run_1_15(nvidia_llmb_run, tmp_path, schema):
    install = tmp_path / "install"
    install.mkdir()
    cluster_config(install, schema, gpu_partition="debug", account="site_acct", gres=4, environment={
        "USE_CASES": "chat:64/32", "NUM_REQUESTS": 20, "CONTAINER_RUNTIME": "none", "WEIGHT_CHECK": "skip",
        "SBATCH_TIMELIMIT": "45", "HF_TOKEN": "hf_secretvalue_0123456789", "STREAMING": True})
    records = tmp_path / "sbatch.jsonl"
    # The shell says otherwise: NVIDIA's precedence makes cluster_config.yaml win, and --env win over both.
    env = shell_environ(PATH=f"{FAKE_SBATCH}{os.pathsep}{shell_environ()['PATH']}", SBATCH_RECORD=str(records),
                        SBATCH_PARTITION="shell_partition", SBATCH_ACCOUNT="shell_acct", NUM_REQUESTS="999",
                        NCCL_DEBUG="WARN")
    flags = ["--env", "STREAMING=false", "--env", "NCCL_DEBUG=INFO"]
    done = subprocess.run([str(nvidia_llmb_run("1.15.0")), "submit", *TASK, *flags], env=env, cwd=install,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    done = subprocess.run([LLMB_RUN, "submit", *TASK, *flags], env=env, cwd=install, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUBMITTED: inference_deepseek-r1_671b" in done.stdout and "jobid=" in done.stdout
    nvidia, ours = [json.loads(line) for line in records.read_text().splitlines()]
    expected = {"partition": "debug", "account": "site_acct", "gres": "4", "time_min": 45,
                "job_name": "inference_deepseek-r1_671b_nvfp4"}
    assert effective(nvidia) == expected
    assert effective(ours) == expected
    for name in JOB_VARS:
        assert ours["env"].get(name) == nvidia["env"].get(name), name
    assert nvidia["env"]["NCCL_DEBUG"] == "INFO" and nvidia["env"]["NUM_REQUESTS"] == "20"

    dry = subprocess.run([LLMB_RUN, "submit", *TASK, *flags, "--dry-run", "--json"], env=env, cwd=install,
                         capture_output=True, text=True, timeout=120)
    assert dry.returncode == 0, dry.stderr
    doc = json.loads(dry.stdout)
    [job] = doc["jobs"]
    slurm = job["slurm"]
    assert {"partition": slurm["partition"], "account": slurm["account"], "gres": str(slurm["gpus_per_node"]),
            "time_min": slurm["time_min"], "job_name": slurm["job_name"]} == expected
    shown = doc["environment"]
    for name in JOB_VARS:
        value = nvidia["env"].get(name)
        assert shown[name]["value"] == ("***" if name == "HF_TOKEN" else value), name
    assert shown["SBATCH_PARTITION"]["source"] == "cluster_config.yaml slurm"
    assert shown["NCCL_DEBUG"]["source"] == "--env" and shown["MODEL_SIZE"]["source"] == "llmb-run"
    assert shown["USE_CASES"]["source"] == "cluster_config.yaml environment"
    assert "hf_secretvalue_0123456789" not in dry.stdout + dry.stderr
