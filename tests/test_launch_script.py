"""launch.sh finds the workload's Python by itself (NVIDIA's llmb-run does not activate the workload's venv):
LLMB_PYTHON, then cluster_config.yaml workloads.config.<key>.venv_path, then $LLMB_INSTALL/venvs/*, then python3
on PATH; it says which one it used, and stops with the list of places tried when none can import the plugin."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from conftest import REPO, python_env

LAUNCH = REPO / "launch.sh"


def fake_python(folder: Path) -> Path:
    """A python3 that can import this checkout (the test's interpreter, linked)."""
    (folder / "bin").mkdir(parents=True, exist_ok=True)
    link = folder / "bin" / "python3"
    link.symlink_to(sys.executable)
    return link


def run_launch(install: Path, path_dirs: list[Path], **extra: str) -> subprocess.CompletedProcess[str]:
    env = python_env(LLMB_INSTALL=str(install), USE_CASES="chat:128/128", PYTHONPATH=str(REPO),
                     PATH=os.pathsep.join([*map(str, path_dirs), "/usr/bin", "/bin"]))
    env.update(extra)
    env.pop("LLMB_PYTHON", None)
    return subprocess.run(["bash", str(LAUNCH), "--dry-run"], env=env, cwd=install, capture_output=True, text=True,
                          timeout=60)


def write_config(install: Path, venv: Path | None) -> None:
    config = {"schema_version": 2, "llmb_repo": str(REPO), "llmb_install": str(install), "gpu_type": "gb200",
              "workloads": {"installed": ["inference_deepseek-r1"], "config": {}}}
    if venv is not None:
        config["workloads"]["config"]["inference_deepseek-r1"] = {"venv_path": str(venv), "venv_type": "uv"}
    (install / "cluster_config.yaml").write_text(yaml.safe_dump(config))


def test_cluster_config_venv_path_first(tmp_path):
    install = tmp_path / "install"
    install.mkdir()
    venv = tmp_path / "site venv"  # a space in the path must not matter
    python = fake_python(venv)
    fake_python(install / "venvs" / "venv_0123")
    write_config(install, venv)
    done = run_launch(install, [])
    assert done.returncode == 0, done.stderr
    assert (f"launch.sh: using Python {python} (from cluster_config.yaml "
            f"workloads.config.inference_deepseek-r1.venv_path)") in done.stdout
    assert "Dry run: inference_deepseek-r1 671b nvfp4 scale 4" in done.stdout


def test_install_venvs_then_path_python(tmp_path):
    install = tmp_path / "install"
    install.mkdir()
    write_config(install, tmp_path / "missing-venv")
    python = fake_python(install / "venvs" / "venv_0123")
    done = run_launch(install, [])
    assert done.returncode == 0, done.stderr
    assert "cannot import llmb_plugin_deepseek_r1; looking further" in done.stderr
    assert f"using Python {python} (from $LLMB_INSTALL/venvs)" in done.stdout
    python.unlink()
    on_path = fake_python(tmp_path / "path")
    done = run_launch(install, [on_path.parent])
    assert done.returncode == 0, done.stderr
    assert f"using Python {on_path} (from python3 on PATH)" in done.stdout


def test_no_python_with_the_plugin_is_a_clear_error(tmp_path):
    install = tmp_path / "install"
    install.mkdir()
    write_config(install, None)
    done = run_launch(install, [], PYTHONPATH="/nonexistent")
    assert done.returncode == 1
    assert "no Python with llmb_plugin_deepseek_r1 found (tried LLMB_PYTHON, cluster_config.yaml" in done.stderr
