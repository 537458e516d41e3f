"""Shared fixtures. The Slurm tests need the project's local cluster (scripts/local-slurm.sh start)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Iterator

import pytest

from llmb_plugin_deepseek_r1.host.cluster import HOST_VARIABLES
from llmb_plugin_deepseek_r1.plugin import DeepSeekR1Workload

REPO = Path(__file__).resolve().parent.parent
FAKE_TRTLLM = REPO / "tests" / "fake_trtllm"

RUN_ARGS = ["single", "-w", "inference_deepseek-r1", "-s", "671b", "--dtype", "nvfp4", "--scale", "4"]

# Whatever a developer's shell exports, tests start from a clean slate: every knob the workload declares and
# every variable the host reads (read from the registries, so a new knob is cleared without touching this file).
KNOB_VARS = (*DeepSeekR1Workload.knobs, *HOST_VARIABLES, "HF_TOKEN")


@pytest.fixture(autouse=True, scope="session")
def _clean_environment() -> Iterator[None]:
    """The whole session (session and module fixtures too, and every process started from os.environ) runs
    without the caller's knobs; tests that set one with monkeypatch get the clean slate back afterwards."""
    with pytest.MonkeyPatch.context() as patch:
        for var in KNOB_VARS:
            patch.delenv(var, raising=False)
        yield


@pytest.fixture
def install_dir(tmp_path: Path) -> Path:
    path = tmp_path / "llmb"
    path.mkdir()
    return path


@pytest.fixture
def llmb_env(monkeypatch: pytest.MonkeyPatch, install_dir: Path, tmp_path: Path) -> Path:
    """A clean environment with LLMB_INSTALL set, run from an empty working directory."""
    monkeypatch.setenv("LLMB_INSTALL", str(install_dir))
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    from llmb_plugin_deepseek_r1.host import cli, plugins  # noqa: F401

    monkeypatch.setattr(plugins, "_SHARED", None)
    return install_dir


@pytest.fixture
def run_cli(llmb_env, capsys):
    """Run llmb-run in-process; returns (exit code, stdout, stderr)."""
    from llmb_plugin_deepseek_r1.host import cli, plugins  # noqa: F401

    def run(*argv: str) -> tuple[int, str, str]:
        code = cli.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def dry_run_json(run_cli, monkeypatch):
    """Set environment knobs, run `single ... --dry-run --json`, return the parsed document."""

    def run(**knobs: str) -> dict:
        for key, value in knobs.items():
            monkeypatch.setenv(key, value)
        code, out, err = run_cli(*RUN_ARGS, "--dry-run", "--json")
        assert code == 0, err
        return json.loads(out)

    return run


def python_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in KNOB_VARS}
    env.update(extra)
    return env


PYTHON = sys.executable
# The console script installed beside this Python (pyenv shims or PATH order cannot pick another one).
LLMB_RUN = str(Path(sys.executable).parent / "llmb-run") \
    if (Path(sys.executable).parent / "llmb-run").exists() else "llmb-run"

# The session-wide local Slurm fixture (skips with the reason when the cluster is not up).
from slurm_cluster import slurm_cluster, two_node_cluster  # noqa: E402,F401


@pytest.fixture(autouse=True, scope="session")
def _results_cache(_clean_environment: None, tmp_path_factory: pytest.TempPathFactory) -> None:
    """`llmb-run results` caches run records per experiments folder: in tests, in a session folder (inherited by
    subprocesses), never the developer's ~/.cache."""
    os.environ["LLMB_RESULTS_CACHE"] = str(tmp_path_factory.mktemp("results-cache"))
