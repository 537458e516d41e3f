"""NVIDIA's own llmb-run (1.2.0 and 1.15.0 wheels in ../shared/vendor/nvidia-llmb) for compatibility tests.

Why: this project claims that NVIDIA's tools drive its recipe and that its own `llmb-run` sends what NVIDIA's
does; only the real wheels can show it. Each version is installed ONCE per test session into a scratch venv
(both are the package `llmb_run`, so one venv each).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import FAKE_TRTLLM, REPO, python_env

WORKLOAD = "inference_deepseek-r1"
WHEELS_CANDIDATES = (REPO.parent / "shared" / "vendor" / "nvidia-llmb", REPO.parent.parent / "shared" / "vendor"
                     / "nvidia-llmb", Path("/work/shared/vendor/nvidia-llmb"))


def wheel_dir() -> Path:
    env = os.environ.get("LLMB_NVIDIA_WHEELS")
    for candidate in ([Path(env)] if env else []) + list(WHEELS_CANDIDATES):
        if (candidate / "llmb_run-1.15.0-py3-none-any.whl").is_file():
            return candidate
    raise AssertionError("NVIDIA's llmb-run wheels not found (set LLMB_NVIDIA_WHEELS to the folder holding "
                         "llmb_run-1.2.0/1.15.0 wheels)")


@pytest.fixture(scope="session")
def nvidia_llmb_run(tmp_path_factory: pytest.TempPathFactory):
    """version -> path of that version's `llmb-run` console script (installed on first use, then cached)."""
    installed: dict[str, Path] = {}

    def get(version: str) -> Path:
        if version not in installed:
            venv = tmp_path_factory.mktemp(f"nvidia-llmb-run-{version}")
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
            wheel = wheel_dir() / f"llmb_run-{version}-py3-none-any.whl"
            done = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
                                   str(wheel)], capture_output=True, text=True, timeout=600)
            assert done.returncode == 0, f"installing NVIDIA llmb-run {version} failed: {done.stderr[-2000:]}"
            installed[version] = venv / "bin" / "llmb-run"
        return installed[version]

    return get


def workload_venv(install: Path) -> Path:
    """The workload's venv as the installer leaves it ($LLMB_INSTALL/venvs/...): here bin/python3 is this test
    run's interpreter, so jobs import this checkout."""
    venv = install / "venvs" / f"{WORKLOAD}_venv"
    (venv / "bin").mkdir(parents=True, exist_ok=True)
    if not (venv / "bin" / "python3").exists():
        (venv / "bin" / "python3").symlink_to(sys.executable)
    return venv


def cluster_config(install: Path, schema: int, *, environment: dict[str, Any] | None = None,
                   installed: list[str] | None = None, venv: str | None = None, account: str = "llmb",
                   gpu_partition: str = "debug", gres: int | None = 4, cpu_partition: str = "cpu") -> Path:
    """A cluster_config.yaml as NVIDIA's installer writes it (schema 1: launcher section; 2: flat keys)."""
    data: dict[str, Any]
    if schema == 1:
        data = {"launcher": {"llmb_repo": str(REPO), "llmb_install": str(install), "gpu_type": "gb200"},
                "slurm": {"account": account, "gpu_partition": gpu_partition, "gpu_gres": gres,
                          "cpu_partition": cpu_partition}}
    else:
        data = {"schema_version": 2, "llmb_repo": str(REPO), "llmb_install": str(install), "gpu_type": "gb200",
                "cluster_name": "local", "install": {"node_architecture": "x86_64"},
                "slurm": {"account": account, "gpu": {"partition": gpu_partition, "gres": gres},
                          "cpu": {"partition": cpu_partition, "gres": None}}}
    data["environment"] = dict(environment or {})
    data["workloads"] = {"installed": installed if installed is not None else [WORKLOAD],
                         "config": {WORKLOAD: {"venv_path": venv or str(workload_venv(install)),
                                               "venv_type": "venv"}}}
    path = install / "cluster_config.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    (install / "workloads" / WORKLOAD).mkdir(parents=True, exist_ok=True)
    return path


def shell_environ(**extra: str) -> dict[str, str]:
    """The submitting shell: the stand-in trtllm-bench on PATH, this checkout importable, no knobs, no job."""
    env = python_env()
    for var in [k for k in env if k.startswith(("SLURM_", "SBATCH_", "FAKE_TRTLLM_", "SUBMITIT_", "LLMB_"))
                and k != "SLURM_CONF"]:
        env.pop(var)
    env["PATH"] = f"{FAKE_TRTLLM}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def nvidia_llmb_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """NVIDIA's llmb-install 1.13.1 (with uv, which it requires to stage uv for compute nodes), installed once.

    Its dependencies but transformers (half the install time): the installer imports transformers only to verify
    `downloads.huggingface` cache entries, which this recipe does not declare."""
    venv = tmp_path_factory.mktemp("nvidia-llmb-install")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check"]
    wheel = wheel_dir() / "llmb_install-1.13.1-py3-none-any.whl"
    for args in (["--no-deps", str(wheel)],
                 ["pydantic>=2,<3", "questionary~=2.1", "rich>=10,<15", "PyYAML~=6.0", "huggingface-hub>=0.23",
                  "uv"]):
        done = subprocess.run(pip + args, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"installing NVIDIA llmb-install 1.13.1 failed: {done.stderr[-2000:]}"
    return venv / "bin" / "llmb-install"
