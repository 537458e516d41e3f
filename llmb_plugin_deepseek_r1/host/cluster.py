"""cluster_config.yaml (NVIDIA llmb-run schema 1 and 2), the shell environment and the install layout, resolved
once per invocation with NVIDIA's precedence: command line (--env) > cluster configuration > shell.

Every resolved setting remembers where it came from (``HostContext.sources``), so that `llmb-run -v` and the
dry run can say why a job goes to a partition or gets a variable.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping, NamedTuple

from .errors import ConfigError

DEFAULT_GPU_TYPE = "gb200"
# The environment variables the host itself reads (a workload declares its own: Workload.knobs).
HOST_VARIABLES = ("LLMB_INSTALL", "STAGE_PATH", "GPU_TYPE", "LLMB_EXECUTOR", "SLURM_JOB_ID")
CONFIG_NAME = "cluster_config.yaml"
SCHEMA_VERSIONS = (1, 2)
_FLAT_KEYS = ("gpu_type", "llmb_install", "llmb_repo", "cluster_name")
_LEGACY_SLURM = ("gpu_partition", "cpu_partition", "gpu_gres", "cpu_gres")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

SHELL = "shell"
COMMAND_LINE = "--env"
DERIVED = "llmb-run"


class WorkloadSettings(NamedTuple):
    """``workloads.config.<key>`` of cluster_config.yaml (written by NVIDIA's installer)."""

    venv_path: str | None = None
    venv_type: str | None = None
    environment: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class ClusterConfig:
    """The parts of cluster_config.yaml the host uses (every field optional here; NVIDIA's llmb-run requires more).

    ``slurm_gpu`` and ``slurm_cpu`` are the resolved Slurm targets as ``SBATCH_*``/``SLURM_*`` variables;
    ``installed`` is None when the file has no ``workloads.installed`` list (then nothing is enforced).
    """

    path: Path | None = None
    schema_version: int = 1
    llmb_install: str | None = None
    llmb_repo: str | None = None
    gpu_type: str | None = None
    cluster_name: str | None = None
    node_architecture: str | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    slurm_gpu: Mapping[str, str] = field(default_factory=dict)
    slurm_cpu: Mapping[str, str] = field(default_factory=dict)
    installed: tuple[str, ...] | None = None
    workloads: Mapping[str, WorkloadSettings] = field(default_factory=dict)

    @property
    def account(self) -> str | None:
        return self.slurm_gpu.get("SBATCH_ACCOUNT")

    @property
    def gpu_partition(self) -> str | None:
        return self.slurm_gpu.get("SBATCH_PARTITION") or self.slurm_gpu.get("SLURM_PARTITION")

    @property
    def gpu_gres(self) -> int | None:
        value = self.slurm_gpu.get("SBATCH_GPUS_PER_NODE")
        return int(value) if value else None

    @property
    def cpu_partition(self) -> str | None:
        return self.slurm_cpu.get("SBATCH_PARTITION") or self.slurm_cpu.get("SLURM_PARTITION")

    def workload(self, key: str) -> WorkloadSettings:
        return self.workloads.get(key) or WorkloadSettings()


class _Reader:
    """Typed access to the parsed YAML: every wrong type is one error naming the file, the key and what fits."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, expected: str, value: Any) -> ConfigError:
        return ConfigError(f"{self.path}: {key} must be {expected}, got {_describe(value)}")

    def mapping(self, value: Any, key: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(key, "a mapping", value)
        return value

    def text(self, value: Any, key: str) -> str | None:
        if value is None or value == "":
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise self.fail(key, "a string", value)
        return str(value)

    def scalar(self, value: Any, key: str) -> str:
        """An environment or Slurm value: strings and numbers; YAML booleans become true/false."""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (str, int, float)):
            return str(value)
        raise self.fail(key, "a string, number or boolean", value)

    def gpu_count(self, value: Any, key: str) -> str:
        if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().isdigit() \
                or int(value) <= 0:
            raise self.fail(key, "a positive whole number of GPUs per node (or null)", value)
        return str(int(value))

    def environment(self, value: Any, key: str) -> dict[str, str]:
        result = {}
        for name, item in self.mapping(value, key).items():
            if not isinstance(name, str) or not _ENV_NAME.match(name):
                raise self.fail(f"{key} key {name!r}", "an environment variable name", name)
            if item is not None:
                result[name] = self.scalar(item, f"{key}.{name}")
        return result


def _describe(value: Any) -> str:
    kind = {bool: "boolean", int: "integer", float: "number", str: "string", list: "list", dict: "mapping"}.get(
        type(value), type(value).__name__)
    return f"{kind} {value!r}" if not isinstance(value, (list, dict)) else kind


def _slurm_key(raw: Any, reader: _Reader, where: str) -> str:
    """NVIDIA's key rules: gres -> SBATCH_GPUS_PER_NODE, bare names -> SBATCH_<NAME>, SBATCH_/SLURM_ kept."""
    if not isinstance(raw, str) or not raw.strip():
        raise reader.fail(f"{where} key {raw!r}", "a non-empty Slurm option name", raw)
    key = raw.strip().replace("-", "_")
    lower = key.lower()
    if lower in ("gres", "gpus_per_node"):
        return "SBATCH_GPUS_PER_NODE"
    if lower.startswith("sbatch_"):
        return "SBATCH_" + key[7:].upper()
    if lower.startswith("slurm_"):
        return "SLURM_" + key[6:].upper()
    return "SBATCH_" + key.upper()


def _slurm_block(block: Mapping[str, Any], reader: _Reader, where: str) -> dict[str, str | None]:
    result: dict[str, str | None] = {}
    for raw, value in block.items():
        key = _slurm_key(raw, reader, where)
        if value is None:
            result[key] = None  # null unsets an inherited value (slurm.cpu.gres: null)
        elif key == "SBATCH_GPUS_PER_NODE":
            result[key] = reader.gpu_count(value, f"{where}.{raw}")
        else:
            result[key] = reader.scalar(value, f"{where}.{raw}")
    return result


def _merge(base: Mapping[str, str], overrides: Mapping[str, str | None]) -> dict[str, str]:
    merged = dict(base)
    for key, value in overrides.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def _slurm_targets(slurm: Mapping[str, Any], reader: _Reader) -> tuple[dict[str, str], dict[str, str]]:
    """(gpu, cpu) targets: schema-2 blocks ``slurm.gpu``/``slurm.cpu`` or the legacy ``gpu_partition``... keys."""
    legacy_keys = [k for k in _LEGACY_SLURM if k in slurm]
    blocks = [k for k in ("gpu", "cpu") if k in slurm]
    if legacy_keys and blocks:
        raise ConfigError(f"{reader.path}: slurm.{legacy_keys[0]} cannot be mixed with slurm.{blocks[0]}: use either the "
                          f"legacy keys (gpu_partition, gpu_gres, cpu_partition) or the slurm.gpu/slurm.cpu blocks")
    common_raw = {k: v for k, v in slurm.items() if k not in _LEGACY_SLURM and k not in ("gpu", "cpu")}
    for key, value in common_raw.items():
        if isinstance(value, (dict, list)):
            raise reader.fail(f"slurm.{key}", "a string or number (only slurm.gpu and slurm.cpu are blocks)", value)
    common = {k: v for k, v in _slurm_block(common_raw, reader, "slurm").items() if v is not None}
    if blocks:
        gpu_raw = reader.mapping(slurm.get("gpu"), "slurm.gpu")
        cpu_raw = slurm.get("cpu")
        gpu = _merge(common, _slurm_block(gpu_raw, reader, "slurm.gpu"))
        cpu = gpu if cpu_raw is None else _merge(common, _slurm_block(reader.mapping(cpu_raw, "slurm.cpu"), reader,
                                                                         "slurm.cpu"))
        return gpu, dict(cpu)
    def legacy(target: str) -> dict[str, str]:
        values = dict(common)
        partition, gres = slurm.get(f"{target}_partition"), slurm.get(f"{target}_gres")
        if partition is not None and partition != "":
            values["SBATCH_PARTITION"] = reader.scalar(partition, f"slurm.{target}_partition")
        if gres is not None and gres is not False and gres != "":  # false/null: no GRES on this cluster
            values["SBATCH_GPUS_PER_NODE"] = reader.gpu_count(gres, f"slurm.{target}_gres")
        return values

    gpu, cpu = legacy("gpu"), legacy("cpu")
    if "SBATCH_PARTITION" not in cpu:  # no CPU partition: CPU jobs fall back to the GPU target, as NVIDIA does
        cpu = dict(gpu)
    return gpu, cpu


def _decode(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        line_no = data.count(b"\n", 0, exc.start) + 1
        line = data[line_start:data.find(b"\n", exc.start) if b"\n" in data[exc.start:] else len(data)]
        key = line.split(b":", 1)[0].strip().decode("utf-8", "replace") if b":" in line else "?"
        raise ConfigError(f"{path}: line {line_no}, key {key!r}: byte 0x{data[exc.start]:02x} is not UTF-8; "
                          f"expected UTF-8 text") from None


def parse_cluster_config(path: Path) -> ClusterConfig:
    """Read one cluster_config.yaml (schema 1 or 2); anything malformed is a ConfigError naming the file."""
    import yaml

    from llmb_plugin_deepseek_r1.yaml_io import safe_load

    try:
        text = _decode(path, path.read_bytes())
        data = safe_load(text)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    data = {} if data is None else data
    reader = _Reader(path)
    if not isinstance(data, dict):
        raise reader.fail("the top level", "a mapping", data)
    version = data.get("schema_version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version not in SCHEMA_VERSIONS:
        raise ConfigError(f"{path}: schema_version {version!r} is not supported: expected 1 (launcher section) or "
                          f"2 (flat llmb_repo, llmb_install, gpu_type)")
    top: dict[str, Any]
    if version == 2:
        if "launcher" in data:
            raise ConfigError(f"{path}: a 'launcher' section is not allowed with schema_version: 2: move its keys "
                              f"(llmb_repo, llmb_install, gpu_type) to the top level")
        top = data
    else:
        flat = [k for k in _FLAT_KEYS if k in data]
        if flat:
            raise ConfigError(f"{path}: top-level {flat[0]!r} needs schema_version: 2 (or move it under launcher:)")
        top = reader.mapping(data.get("launcher"), "launcher")
    prefix = "" if version == 2 else "launcher."
    install = reader.mapping(data.get("install"), "install")
    workloads = reader.mapping(data.get("workloads"), "workloads")
    installed_raw = workloads.get("installed")
    if installed_raw is not None and (not isinstance(installed_raw, list)
                                      or not all(isinstance(w, str) for w in installed_raw)):
        raise reader.fail("workloads.installed", "a list of workload keys", installed_raw)
    settings = {}
    for key, raw in reader.mapping(workloads.get("config"), "workloads.config").items():
        where = f"workloads.config.{key}"
        raw = reader.mapping(raw, where)
        settings[str(key)] = WorkloadSettings(
            venv_path=reader.text(raw.get("venv_path"), f"{where}.venv_path"),
            venv_type=reader.text(raw.get("venv_type"), f"{where}.venv_type"),
            environment=reader.environment(raw.get("environment"), f"{where}.environment"))
    gpu, cpu = _slurm_targets(reader.mapping(data.get("slurm"), "slurm"), reader)
    return ClusterConfig(
        path=path, schema_version=version,
        llmb_install=reader.text(top.get("llmb_install"), prefix + "llmb_install"),
        llmb_repo=reader.text(top.get("llmb_repo"), prefix + "llmb_repo"),
        gpu_type=reader.text(top.get("gpu_type"), prefix + "gpu_type"),
        cluster_name=reader.text(top.get("cluster_name"), prefix + "cluster_name"),
        node_architecture=reader.text(install.get("node_architecture"), "install.node_architecture"),
        environment=reader.environment(data.get("environment"), "environment"),
        slurm_gpu=gpu, slurm_cpu=cpu,
        installed=None if installed_raw is None else tuple(installed_raw),
        workloads=settings,
    )


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
    """Everything resolved from the environment before any workload is asked anything.

    ``sources`` names, for each variable the invocation set or changed, where its value came from: ``shell``,
    ``--env``, ``llmb-run`` (derived), or ``cluster_config.yaml <key>``.
    """

    install_dir: Path
    gpu_type: str
    env: Mapping[str, str]
    cluster: ClusterConfig
    sources: Mapping[str, str] = field(default_factory=dict)
    gpu_type_source: str = "default"


def resolve_context(environ: Mapping[str, str], cwd: Path, overrides: Mapping[str, str] = (),
                    workload: str | None = None, cluster: ClusterConfig | None = None) -> HostContext:
    """Shell, then cluster_config.yaml (slurm.* as SBATCH_*, environment, the workload's own environment),
    then ``--env`` overrides: later wins, as in NVIDIA's llmb-run. ``cluster`` is the file already read for this
    ``cwd`` and shell (one invocation resolves a context per task; the file is found and parsed once)."""
    if environ.get("STAGE_PATH"):
        raise ConfigError(
            "STAGE_PATH is set but is no longer used: set LLMB_INSTALL to the top-level install directory "
            "(workloads then live in $LLMB_INSTALL/workloads/<workload>) and unset STAGE_PATH"
        )
    if cluster is None:
        config_path = find_cluster_config(cwd, environ)
        cluster = parse_cluster_config(config_path) if config_path else ClusterConfig()
    env: dict[str, str] = dict(environ)
    sources: dict[str, str] = {}
    name = CONFIG_NAME

    def put(values: Mapping[str, str], source: str) -> None:
        for key, value in values.items():
            env[key] = value
            sources[key] = source

    put(cluster.slurm_gpu, f"{name} slurm")
    put(cluster.environment, f"{name} environment")
    if workload:
        put(cluster.workload(workload).environment, f"{name} workloads.config.{workload}.environment")
    put(dict(overrides), COMMAND_LINE)
    if cluster.llmb_install and "LLMB_INSTALL" not in dict(overrides):
        put({"LLMB_INSTALL": cluster.llmb_install}, f"{name} llmb_install")
    install = env.get("LLMB_INSTALL")
    if not install:
        raise ConfigError(
            "LLMB_INSTALL is not set: export LLMB_INSTALL=/path/to/install (the top-level directory holding "
            "images/, datasets/, venvs/ and workloads/) or set llmb_install in cluster_config.yaml"
        )
    install_dir = Path(os.path.expanduser(install))
    if not install_dir.is_absolute():
        install_dir = (cwd / install_dir).resolve()
    env["LLMB_INSTALL"] = str(install_dir)
    if cluster.gpu_type:
        gpu_type, gpu_source = cluster.gpu_type, f"{name} gpu_type"
    elif env.get("GPU_TYPE"):
        gpu_type, gpu_source = env["GPU_TYPE"], sources.get("GPU_TYPE", SHELL)
    else:
        gpu_type, gpu_source = DEFAULT_GPU_TYPE, "default"
    return HostContext(install_dir=install_dir, gpu_type=gpu_type.lower(), env=env, cluster=cluster,
                       sources=sources, gpu_type_source=gpu_source)


def source_of(context: HostContext, name: str) -> str:
    """Where a variable of the resolved environment came from (``shell`` unless the invocation set it)."""
    return context.sources.get(name, SHELL)


def check_installed(cluster: ClusterConfig, workload: str, force: bool) -> None:
    """NVIDIA refuses a workload missing from ``workloads.installed`` (when that list exists) unless forced."""
    if force or cluster.installed is None or workload in cluster.installed:
        return
    listed = ", ".join(cluster.installed) or "none"
    raise ConfigError(f"workload {workload!r} is not installed on this cluster ({cluster.path} "
                      f"workloads.installed: {listed}): install it with llmb-install, add it to the list, or pass "
                      f"--force")
