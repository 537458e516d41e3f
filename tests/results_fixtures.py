"""pytest fixtures for the results tests (loaded with `pytest_plugins`, so the session set is built once)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from results_kit import BASE_RUNS, make_runs


@pytest.fixture(scope="session")
def base_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    install = tmp_path_factory.mktemp("results-base")
    make_runs(install, *BASE_RUNS)
    return install


@pytest.fixture
def install(base_install: Path, tmp_path: Path) -> Path:
    """A private copy of the base results (tests may add or change files)."""
    target = tmp_path / "llmb"
    shutil.copytree(base_install, target, symlinks=True)
    return target
