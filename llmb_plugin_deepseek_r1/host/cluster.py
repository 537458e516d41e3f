"""cluster_config.yaml, the shell environment and the install layout, resolved once per invocation."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .errors import ConfigError

DEFAULT_GPU_TYPE = "gb200"
# The environment variables the host itself reads (a workload declares its own: Workload.knobs).
HOST_VARIABLES = ("LLMB_INSTALL", "STAGE_PATH", "GPU_TYPE", "LLMB_EXECUTOR", "SLURM_JOB_ID")
CONFIG_NAME = "cluster_config.yaml"


@dataclass(frozen=True)
class ClusterConfig:
    """The parts of llmb-run's cluster_config.yaml the host uses (all optional)."""

    path: Path | None = None
    llmb_install: str | None = None
    llmb_repo: str | None = None
    gpu_type: str | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    account: str | None = None
    gpu_partition: str | None = None
    gpu_gres: int | None = None
    cpu_partition: str | None = None
    installed: tuple[str, ...] = ()


def _str_or_none(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _gres(value: Any, path: Path) -> int | None:
    if value in (None, False, ""):
        return None
    try:
        count = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{path}: slurm.gpu_gres must be a GPU count or null, got {value!r}") from None
    if count <= 0:
        raise ConfigError(f"{path}: slurm.gpu_gres must be a positive GPU count or null, got {value!r}")
    return count


def parse_cluster_config(path: Path) -> ClusterConfig:
    """Read one cluster_config.yaml; a malformed file is a ConfigError naming the file."""
    import yaml

    from llmb_plugin_deepseek_r1.yaml_io import safe_load

    try:
        data = safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}".splitlines()[0]) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    launcher = data.get("launcher") or {}
    slurm = data.get("slurm") or {}
    environment = data.get("environment") or {}
    workloads = data.get("workloads") or {}
    for section, value in (("launcher", launcher), ("slurm", slurm), ("environment", environment),
                           ("workloads", workloads)):
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: section {section!r} must be a mapping, got {type(value).__name__}")
    return ClusterConfig(
        path=path,
        llmb_install=_str_or_none(launcher.get("llmb_install")),
        llmb_repo=_str_or_none(launcher.get("llmb_repo")),
        gpu_type=_str_or_none(launcher.get("gpu_type")),
        environment={str(k): _env_value(v) for k, v in environment.items() if v is not None},
        account=_str_or_none(slurm.get("account")),
        gpu_partition=_str_or_none(slurm.get("gpu_partition")),
        gpu_gres=_gres(slurm.get("gpu_gres"), path),
        cpu_partition=_str_or_none(slurm.get("cpu_partition")),
        installed=tuple(str(w) for w in (workloads.get("installed") or ())),
    )


def _env_value(value: Any) -> str:
    # YAML turns `true` into a bool; jobs must see the lowercase word, not Python's "True".
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def find_cluster_config(cwd: Path, environ: Mapping[str, str]) -> Path | None:
    """cluster_config.yaml in the working directory, else in $LLMB_INSTALL (llmb-run's order)."""
    candidates = [cwd / CONFIG_NAME]
    if environ.get("LLMB_INSTALL"):
        candidates.append(Path(environ["LLMB_INSTALL"]) / CONFIG_NAME)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return None


@dataclass(frozen=True)
class HostContext:
    """Everything resolved from the environment before any workload is asked anything."""

    install_dir: Path
    gpu_type: str
    env: Mapping[str, str]
    cluster: ClusterConfig


def resolve_context(environ: Mapping[str, str], cwd: Path, overrides: Mapping[str, str] = ()) -> HostContext:
    """Merge cluster_config.yaml, the shell environment and ``--env`` overrides (later wins) and check the layout.

    The cluster file's ``environment`` and ``slurm`` sections only fill what the shell leaves unset, so that a
    variable set for one invocation always wins over the site default.
    """
    if environ.get("STAGE_PATH"):
        raise ConfigError(
            "STAGE_PATH is set but is no longer used: set LLMB_INSTALL to the top-level install directory "
            "(workloads then live in $LLMB_INSTALL/workloads/<workload>) and unset STAGE_PATH"
        )
    config_path = find_cluster_config(cwd, environ)
    cluster = parse_cluster_config(config_path) if config_path else ClusterConfig()
    env: dict[str, str] = dict(cluster.environment)
    env.update(environ)
    env.update(dict(overrides))
    for var, value in (("SBATCH_ACCOUNT", cluster.account), ("SBATCH_PARTITION", cluster.gpu_partition),
                       ("SBATCH_GPUS_PER_NODE", cluster.gpu_gres)):
        if value is not None and not env.get(var):
            env[var] = str(value)
    install = env.get("LLMB_INSTALL") or cluster.llmb_install
    if not install:
        raise ConfigError(
            "LLMB_INSTALL is not set: export LLMB_INSTALL=/path/to/install (the top-level directory holding "
            "images/, datasets/, venvs/ and workloads/) or set launcher.llmb_install in cluster_config.yaml"
        )
    install_dir = Path(os.path.expanduser(install))
    if not install_dir.is_absolute():
        install_dir = (cwd / install_dir).resolve()
    env["LLMB_INSTALL"] = str(install_dir)
    gpu_type = (cluster.gpu_type or env.get("GPU_TYPE") or DEFAULT_GPU_TYPE).lower()
    return HostContext(install_dir=install_dir, gpu_type=gpu_type, env=env, cluster=cluster)
