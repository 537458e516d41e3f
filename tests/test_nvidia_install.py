"""NVIDIA's installer, llmb-install 1.13.1, installs this recipe headless (`--play`).

It needs an LLMB repository around the recipe (README.md + cli/llmb-run/, as in NVIDIA's dgxc-benchmarking), so
the test builds one holding a copy of this checkout as a recipe folder. The installer copies the repository,
creates the workload's venv, imports the container image with the STAND-IN enroot (tests/fake_enroot) and runs
the recipe's `setup.tasks`: setup.sh installs this package into the venv (uv, from the package index), places
the weights from a hand-built local Hugging Face cache (HF_HUB_OFFLINE=1) and writes the datasets. Needs
git-lfs (the installer refuses to start without it) and network access to the package index.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import yaml

from conftest import LLMB_RUN, REPO, python_env
from nvidia_llmb import WORKLOAD, nvidia_llmb_install  # noqa: F401 (fixture)
from test_setup_support import FAKE_ENROOT_DIR, make_hf_cache

IGNORED = shutil.ignore_patterns(".git", "tests", "bench", "__pycache__", "*.egg-info", "build", "dist", ".venv*",
                                 ".pytest_cache")


def scratch_llmb_repo(root: Path) -> Path:
    """An LLMB repository as llmb-install recognises one, with this checkout as the recipe folder."""
    (root / "cli" / "llmb-run").mkdir(parents=True)
    (root / "README.md").write_text("scratch LLMB repository for the installer test\n")
    (root / "cli" / "llmb-run" / "README.md").write_text("llmb-run\n")
    shutil.copytree(REPO, root / "deepseek_r1", ignore=IGNORED, symlinks=True)
    return root


def test_llmb_install_play_installs_the_recipe(nvidia_llmb_install, tmp_path):
    if shutil.which("git-lfs") is None:
        raise AssertionError("git-lfs is not installed: llmb-install refuses to start without it "
                             "(apt-get install git-lfs; .ci/run installs it)")
    repo = scratch_llmb_repo(tmp_path / "repo")
    make_hf_cache(tmp_path / "hf" / "hub")
    install = tmp_path / "install"
    playfile = tmp_path / "play.yaml"
    playfile.write_text(yaml.safe_dump({
        "venv_type": "venv", "install_path": str(install), "gpu_type": "gb200", "node_architecture": "x86_64",
        "install_method": "local", "selected_workloads": [WORKLOAD],
        "slurm": {"account": "llmb", "gpu_partition": "debug", "cpu_partition": "cpu", "gpu_partition_gres": 4,
                  "cpu_partition_gres": None},
        "environment_vars": {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"),
                             "HF_HUB_CACHE": str(tmp_path / "hf" / "hub"), "PROMPT_REQUESTS": "16",
                             "USE_CASES": "chat:128/128"}}))
    home = tmp_path / "home"
    home.mkdir()
    env = python_env(HOME=str(home), PATH=os.pathsep.join([str(FAKE_ENROOT_DIR), str(nvidia_llmb_install.parent),
                                                            os.environ.get("PATH", "")]))
    env.pop("PYTHONPATH", None)  # the venv must get the package from the installer, not from this checkout
    done = subprocess.run([str(nvidia_llmb_install), "--play", str(playfile)], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "Finished task 'deepseek_r1_setup' successfully" in done.stdout
    config = yaml.safe_load((install / "cluster_config.yaml").read_text())
    assert config["schema_version"] == 2 and config["workloads"]["installed"] == [WORKLOAD]
    venv = Path(config["workloads"]["config"][WORKLOAD]["venv_path"])
    imported = subprocess.run([str(venv / "bin" / "python3"), "-c", "import llmb_plugin_deepseek_r1.host as h; "
                               "print(h.__file__)"], cwd="/", env=env, capture_output=True, text=True)
    assert imported.returncode == 0 and str(venv) in imported.stdout, imported.stderr
    workload = install / "workloads" / WORKLOAD
    assert (workload / "DeepSeek-R1-FP4" / ".llmb-manifest.json").is_file()
    assert (workload / "dataset_chat_128_128.txt").is_file()
    assert (install / "images" / "tensorrt-llm+release+1.0.0rc1.sqsh").is_file()
    # This project's llmb-run reads the installer's cluster_config.yaml, and launch.sh finds the installed venv.
    dry = subprocess.run([LLMB_RUN, "submit", "-w", WORKLOAD, "-s", "671b", "--dtype", "nvfp4", "--scale", "4",
                          "--dry-run", "--json"], cwd=install, env=python_env(HOME=str(home)), capture_output=True,
                         text=True, timeout=120)
    assert dry.returncode == 0, dry.stderr
    launch = subprocess.run(["bash", str(install / "llmb_repo" / "deepseek_r1" / "launch.sh"), "--dry-run"],
                            cwd=install, env={**env, "LLMB_INSTALL": str(install)}, capture_output=True, text=True,
                            timeout=120)
    assert launch.returncode == 0, launch.stderr
    assert f"using Python {venv}/bin/python3 (from cluster_config.yaml" in launch.stdout
