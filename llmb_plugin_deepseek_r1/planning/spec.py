"""Environment knobs -> one validated, frozen RunSpec per use case (pure: no file system, no Slurm)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from llmb_plugin_deepseek_r1 import paths
from llmb_plugin_deepseek_r1.recipe import MODEL_NAME
from llmb_plugin_deepseek_r1.host import safety
from llmb_plugin_deepseek_r1.planning import bounds, knobs
from llmb_plugin_deepseek_r1.host.contract import RunRequest, is_secret_name
from llmb_plugin_deepseek_r1.host.errors import ValidationError
from llmb_plugin_deepseek_r1.host.layout import node_layout
from .versions import parse_trtllm_version, trtllm_version_from_image

DEFAULT_USE_CASE_ORDER = ("reasoning", "chat", "summarization", "generation")
FALLBACK_USE_CASE = "reasoning"

_INT_KNOBS = {"MAX_NUM_TOKENS": "max_num_tokens", "MAX_BATCH_SIZE": "max_batch_size",
              "NUM_REQUESTS": "num_requests", "TP": "tp", "EP": "ep", "PP": "pp"}


@dataclass(frozen=True)
class RunSpec:
    """Everything one use case of one job needs, decided before anything is submitted."""

    use_case: str
    isl: int
    osl: int
    max_batch_size: int
    max_num_tokens: int
    kv_cache_fraction: float
    concurrency: int
    num_requests: int
    tp: int
    ep: int
    pp: int
    streaming: bool
    mode: str
    attention_dp: bool
    time_limit_min: int
    workload: str
    model_size: str
    dtype: str
    scale: int
    gpu_type: str
    gpus_per_node_hw: int
    install_dir: Path
    workload_dir: Path
    model_dir: Path
    image: str
    trtllm_version: str
    runtime: str
    mpi_type: str
    weight_check: str
    oom_retries: int
    account: str | None = None
    partition: str | None = None
    gpus_per_node: int | None = None
    container_env: tuple[str, ...] = ()
    bench_timeout_s: int | None = None
    hang_grace_s: int = knobs.DEFAULT_HANG_GRACE_S
    nodes: int = 1
    tasks_per_node: int = 0  # 0: the scale (one node)
    segment: int | None = None
    knobs: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def world_size(self) -> int:
        """Ranks of the TensorRT-LLM world: one per GPU, TP x PP (attention DP and EP live inside it)."""
        return self.tp * self.pp

    @property
    def ranks_per_node(self) -> int:
        return self.tasks_per_node or self.scale

    @property
    def result_name(self) -> str:
        """The seed's directory name: DeepSeek-R1_TP4_EP4_PP1_CON-1_reasoning."""
        return f"{MODEL_NAME}_TP{self.tp}_EP{self.ep}_PP{self.pp}_CON{self.concurrency}_{self.use_case}"

    @property
    def result_dir(self) -> Path:
        return paths.result_dir(self.workload_dir, self.result_name)

    @property
    def file_stem(self) -> str:
        return f"{self.result_name}_streaming-{'on' if self.streaming else 'off'}"

    @property
    def dataset(self) -> Path:
        return paths.dataset_file(self.workload_dir, self.use_case, self.isl, self.osl)

    def job_file(self, suffix: str, job_id: str = "%j") -> Path:
        """<result_dir>/<stem>_<job id><suffix>; '%j' is replaced by the real job id inside the job."""
        return self.result_dir / f"{self.file_stem}_{job_id}{suffix}"


@dataclass(frozen=True)
class UseCaseRequest:
    name: str
    isl: int
    osl: int


def parse_use_cases(value: str | None, table: Mapping[str, Any]) -> list[UseCaseRequest]:
    """USE_CASES: 'name:ISL/OSL' entries separated by spaces or commas; unset means every table row."""
    if value is None or not value.strip():
        order = [n for n in DEFAULT_USE_CASE_ORDER if n in table] + [n for n in table if n not in
                                                                      DEFAULT_USE_CASE_ORDER]
        return [UseCaseRequest(n, int(table[n]["isl"]), int(table[n]["osl"])) for n in order]
    result: list[UseCaseRequest] = []
    entries = re.split(r"[\s,]+", value.strip())
    if len(entries) > bounds.MAX_USE_CASES:
        raise ValidationError(f"USE_CASES names {len(entries)} use cases: at most {bounds.MAX_USE_CASES} per "
                              f"invocation")
    for entry in entries:
        match = re.fullmatch(r"([^:]+):([^/]+)/(.+)", entry)
        if not match:
            raise ValidationError(f"USE_CASES entry {entry!r} is not valid: expected name:ISL/OSL, "
                                  f"e.g. reasoning:1000/1000")
        name = knobs.name("USE_CASES", match[1])
        isl = bounds.at_most(f"USE_CASES ISL of {name}", knobs.positive_int(f"USE_CASES ISL of {name}", match[2]),
                             bounds.MAX_ISL)
        osl = bounds.at_most(f"USE_CASES OSL of {name}", knobs.positive_int(f"USE_CASES OSL of {name}", match[3]),
                             bounds.MAX_OSL)
        if any(r.name == name for r in result):
            raise ValidationError(f"USE_CASES names {name!r} twice: each use case may appear once")
        result.append(UseCaseRequest(name, isl, osl))
    return result


def _images(metadata: Mapping[str, Any]) -> list[str]:
    return [str(i) for i in (metadata.get("container") or {}).get("images") or []]


def resolve_image(env: Mapping[str, str], install_dir: Path, metadata: Mapping[str, Any]) -> tuple[str, str]:
    """(image to run, TensorRT-LLM version) from RUN_CONF_IMAGE / TRTLLM_VERSION / the recipe's image."""
    default_uri = _images(metadata)[0]
    override = env.get("RUN_CONF_IMAGE", "").strip()
    if override:
        safety.no_control("RUN_CONF_IMAGE", override)
        if " " in override:
            raise ValidationError(f"RUN_CONF_IMAGE={override!r} is not valid: expected an image file path or "
                                  f"an image URI without spaces")
        image = override
    else:
        image = str(paths.image_file(install_dir, default_uri))
    explicit = env.get("TRTLLM_VERSION", "").strip()
    if explicit:
        version = parse_trtllm_version("TRTLLM_VERSION", explicit)
    else:
        version = trtllm_version_from_image(image)
        if version is None:
            raise ValidationError(f"cannot tell the TensorRT-LLM version from RUN_CONF_IMAGE={image!r}: set "
                                  f"TRTLLM_VERSION (e.g. 1.0.0rc1) so the right extra-options YAML is written")
    return image, str(version)


def _set(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    return None if value is None or value.strip() == "" else value


SWEEPABLE = ("MAX_NUM_TOKENS", "MAX_BATCH_SIZE", "KV_CACHE_FRACTION", "NUM_REQUESTS", "CONCURRENCY", "TP", "EP",
             "PP", "STREAMING")


MAX_SWEEP_FILE_BYTES = 1 << 20


def _where(path: Path) -> str:
    return f"SWEEP_FILE={str(path)!r}"


def _sweep_value(path: Path, key: str, value: Any) -> str:
    """One value of a SWEEP_FILE list as the knob's text; a mapping, list or null names file, key and type."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    raise ValidationError(f"{_where(path)}: key {key}: expected a number, string or true/false (or a list of "
                          f"them), got {'null' if value is None else type(value).__name__}")


def _sweep_file_values(path_text: str) -> dict[str, list[str]]:
    """SWEEP_FILE: a YAML mapping of sweepable knob names to a value or a list of values, read strictly."""
    import yaml

    path = Path(path_text)
    try:
        raw = path.read_bytes()[:MAX_SWEEP_FILE_BYTES + 1]
        if len(raw) > MAX_SWEEP_FILE_BYTES:
            raise ValidationError(f"{_where(path)}: larger than {MAX_SWEEP_FILE_BYTES} bytes; expected a small "
                                  f"YAML mapping")
        data = yaml.safe_load(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ValidationError(f"{_where(path)}: not UTF-8 text (byte {exc.start}); expected a YAML "
                              f"mapping") from None
    except (OSError, yaml.YAMLError, RecursionError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValidationError(f"{_where(path)} cannot be read: {reason}") from None
    if not isinstance(data, dict):
        raise ValidationError(f"{_where(path)}: expected a mapping of knob names to lists of values, got "
                              f"{'null' if data is None else type(data).__name__}")
    values: dict[str, list[str]] = {}
    for key, items in data.items():
        if key not in SWEEPABLE:
            raise ValidationError(f"{_where(path)}: key {str(key)[:60]!r} is not valid: expected one of "
                                  f"{', '.join(SWEEPABLE)}")
        items = items if isinstance(items, list) else [items]
        if not items:
            raise ValidationError(f"{_where(path)}: key {key} has no values")
        if len(items) > bounds.MAX_SWEEP_POINTS:
            raise ValidationError(f"{_where(path)}: key {key} has {len(items)} values; at most "
                                  f"{bounds.MAX_SWEEP_POINTS} sweep points are allowed")
        values[key] = [safety.no_control(f"{_where(path)}: key {key}", _sweep_value(path, key, v))
                       for v in items]
    return values


def expand_sweep(env: Mapping[str, str]) -> list[dict[str, str]]:
    """Comma-separated values in sweepable knobs (MAX_BATCH_SIZE=128,256) and SWEEP_FILE -> one environment per
    point of the Cartesian product (a knob in the environment wins over the same knob in the file)."""
    import itertools

    safety.env_values(env, knobs.RUN_KNOBS)
    axes: dict[str, list[str]] = _sweep_file_values(env["SWEEP_FILE"]) if _set(env, "SWEEP_FILE") else {}
    for var in SWEEPABLE:
        if _set(env, var):
            values = [v.strip() for v in env[var].split(",", bounds.MAX_SWEEP_POINTS)]
            if any(v == "" for v in values):
                raise ValidationError(f"{var}={env[var][:60]!r} is not valid: an empty value in the "
                                      f"comma-separated list")
            axes[var] = values
    bounds.sweep_size({var: len(values) for var, values in axes.items()}, 1)
    names = list(axes)
    points = []
    for combo in itertools.product(*(axes[n] for n in names)):
        point = dict(env)
        point.update(zip(names, combo))
        points.append(point)
    return points


def resolve_run_specs(request: RunRequest, metadata: Mapping[str, Any]) -> list[RunSpec]:
    """One RunSpec per use case and sweep point, all validated before anything is submitted."""
    points = expand_sweep(request.env)
    per_point = len(parse_use_cases(_set(request.env, "USE_CASES"), metadata["use_cases"]))
    if len(points) * per_point > bounds.MAX_RUNS:
        raise ValidationError(f"{len(points)} sweep points x {per_point} use cases = {len(points) * per_point} "
                              f"runs; at most {bounds.MAX_RUNS} per invocation: split the sweep")
    specs: list[RunSpec] = []
    for point in points:
        specs.extend(_resolve_point(request, metadata, point))
    return specs


def _resolve_point(request: RunRequest, metadata: Mapping[str, Any], env: Mapping[str, str]) -> list[RunSpec]:
    """One RunSpec per requested use case: table row -> MODE overrides -> knobs set in the environment."""
    table: Mapping[str, Any] = metadata["use_cases"]
    where = paths.workload_paths(request.install_dir, env, metadata)
    workload_dir = where.workload_dir
    use_cases = parse_use_cases(_set(env, "USE_CASES"), table)
    mode = knobs.choice("MODE", env["MODE"], knobs.MODES) if _set(env, "MODE") else "max_throughput"
    mode_overrides = (metadata.get("modes") or {}).get(mode) or {}
    overrides: dict[str, Any] = {}
    for var, key in _INT_KNOBS.items():
        if _set(env, var):
            overrides[key] = bounds.bounded(var, knobs.positive_int(var, env[var]))
    if _set(env, "KV_CACHE_FRACTION"):
        overrides["kv_cache_free_gpu_mem_fraction"] = knobs.fraction("KV_CACHE_FRACTION", env["KV_CACHE_FRACTION"])
    if _set(env, "CONCURRENCY"):
        overrides["concurrency"] = bounds.bounded("CONCURRENCY", knobs.concurrency("CONCURRENCY", env["CONCURRENCY"]))
    streaming = knobs.boolean("STREAMING", env["STREAMING"]) if _set(env, "STREAMING") else True
    time_limit = knobs.time_limit_minutes("SBATCH_TIMELIMIT", env["SBATCH_TIMELIMIT"]) \
        if _set(env, "SBATCH_TIMELIMIT") else None
    gpus_per_node = bounds.bounded("SBATCH_GPUS_PER_NODE", knobs.positive_int(
        "SBATCH_GPUS_PER_NODE", env["SBATCH_GPUS_PER_NODE"])) if _set(env, "SBATCH_GPUS_PER_NODE") else None
    account = knobs.name("SBATCH_ACCOUNT", env["SBATCH_ACCOUNT"]) if _set(env, "SBATCH_ACCOUNT") else None
    partition = _partition(env)
    runtime = knobs.choice("CONTAINER_RUNTIME", env["CONTAINER_RUNTIME"], knobs.RUNTIMES) \
        if _set(env, "CONTAINER_RUNTIME") else "pyxis"
    mpi_type = knobs.name("SLURM_MPI_TYPE", env["SLURM_MPI_TYPE"]) if _set(env, "SLURM_MPI_TYPE") else "pmix"
    weight_check = knobs.choice("WEIGHT_CHECK", env["WEIGHT_CHECK"], ("quick", "full", "skip")) \
        if _set(env, "WEIGHT_CHECK") else "quick"
    oom_retries = 0
    if _set(env, "OOM_RETRIES"):
        oom_retries = 0 if env["OOM_RETRIES"].strip() == "0" else bounds.bounded(
            "OOM_RETRIES", knobs.positive_int("OOM_RETRIES", env["OOM_RETRIES"]))
    bench_timeout = bounds.bounded("BENCH_TIMEOUT", knobs.positive_int("BENCH_TIMEOUT", env["BENCH_TIMEOUT"])) \
        if _set(env, "BENCH_TIMEOUT") else None
    hang_grace = bounds.bounded("HANG_GRACE", knobs.positive_int("HANG_GRACE", env["HANG_GRACE"])) \
        if _set(env, "HANG_GRACE") else knobs.DEFAULT_HANG_GRACE_S
    container_env = tuple(knobs.env_name("CONTAINER_ENV", n) for n in (env.get("CONTAINER_ENV") or "").split())
    model_dir = where.model_dir
    image, version = resolve_image(env, request.install_dir, metadata)
    layout = node_layout(metadata, request.gpu_type, request.scale, _set(env, "SBATCH_SEGMENT_SIZE"))
    parallel_defaults = ((metadata.get("run") or {}).get("parallelism") or {}).get(request.gpu_type) or {}
    knobs_set = {k: env[k] for k in knobs.RUN_KNOBS if k in env and not is_secret_name(k)}

    specs = []
    for uc in use_cases:
        row = dict(table.get(uc.name) or table[FALLBACK_USE_CASE])
        row.update(mode_overrides)
        row.update(default_parallelism(row, parallel_defaults, request.scale))
        row.update(overrides)
        spec = RunSpec(
            use_case=uc.name, isl=uc.isl, osl=uc.osl,
            max_batch_size=int(row["max_batch_size"]), max_num_tokens=int(row["max_num_tokens"]),
            kv_cache_fraction=float(row["kv_cache_free_gpu_mem_fraction"]),
            concurrency=int(row["concurrency"]), num_requests=int(row["num_requests"]),
            tp=int(row["tp"]), ep=int(row["ep"]), pp=int(row["pp"]), streaming=streaming, mode=mode,
            attention_dp=bool(row.get("attn_dp_enabled", True)),
            time_limit_min=time_limit or int(row.get("time_limit_min", 30)),
            workload=request.workload, model_size=request.model_size, dtype=request.dtype, scale=request.scale,
            gpu_type=request.gpu_type, gpus_per_node_hw=layout.gpus_per_node, install_dir=request.install_dir,
            workload_dir=workload_dir, model_dir=model_dir, image=image, trtllm_version=version, runtime=runtime,
            mpi_type=mpi_type, weight_check=weight_check, oom_retries=oom_retries, account=account,
            partition=partition, gpus_per_node=gpus_per_node, container_env=container_env,
            bench_timeout_s=bench_timeout, hang_grace_s=hang_grace, nodes=layout.nodes,
            tasks_per_node=layout.tasks_per_node, segment=layout.segment, knobs=knobs_set,
        )
        check_spec(spec)
        specs.append(spec)
    return specs


def default_parallelism(row: Mapping[str, Any], defaults: Mapping[str, Any], scale: int) -> dict[str, int]:
    """TP/PP/EP for a scale the table row was not written for: PP from the GPU type's defaults (else the row),
    TP = scale / PP, EP = TP (expert parallelism across the whole TP group, as NVIDIA's recipes do). The row's
    own values stand where they already fill the scale; knobs set by the user override either."""
    pp = int(defaults.get("pp", row["pp"]))
    if int(row["tp"]) * int(row["pp"]) == scale and "pp" not in defaults:
        return {}
    if scale % pp:
        return {"pp": pp}  # check_spec names the mismatch
    return {"pp": pp, "tp": scale // pp, "ep": int(defaults.get("ep", scale // pp))}


def _partition(env: Mapping[str, str]) -> str | None:
    value = _set(env, "SBATCH_PARTITION")
    if value is None:
        return None
    for part in value.split(","):  # sbatch accepts a comma-separated list of partitions
        knobs.name("SBATCH_PARTITION", part)
    return value


def check_spec(spec: RunSpec) -> None:
    """Cross-field rules that would otherwise fail inside the job, after the GPUs are allocated."""
    if spec.tp * spec.pp != spec.scale:
        layout = f" on {spec.nodes} nodes x {spec.ranks_per_node}" if spec.nodes > 1 else ""
        raise ValidationError(f"TP={spec.tp} x PP={spec.pp} = {spec.tp * spec.pp} ranks does not match --scale "
                              f"{spec.scale}{layout}: trtllm-bench runs one world of TP x PP ranks (attention data "
                              f"parallelism lives inside TP), so choose TP and PP whose product is {spec.scale}")
    if spec.tp % spec.ep != 0:
        divisors = [d for d in range(1, spec.tp + 1) if spec.tp % d == 0]
        raise ValidationError(f"EP={spec.ep} is not valid with TP={spec.tp}: the expert-parallel size must "
                              f"divide TP, and so the world of {spec.world_size} ranks "
                              f"(e.g. {', '.join(map(str, divisors))})")
    if spec.max_num_tokens < spec.isl:
        raise ValidationError(
            f"MAX_NUM_TOKENS={spec.max_num_tokens} is smaller than the ISL {spec.isl} of use case "
            f"{spec.use_case}: requests could never be scheduled; use at least {spec.isl}")
    if spec.concurrency != -1 and spec.concurrency > spec.num_requests:
        raise ValidationError(f"CONCURRENCY={spec.concurrency} is larger than NUM_REQUESTS={spec.num_requests}: "
                              f"the benchmark would never reach that concurrency")
    paths.inside(spec.result_dir, spec.workload_dir, "result directory")
    paths.inside(spec.dataset, spec.workload_dir, "dataset")


def with_overrides(spec: RunSpec, **changes: Any) -> RunSpec:
    """A copy of ``spec`` with fields changed and re-checked (used by sweeps and OOM retries)."""
    changed = replace(spec, **changes)
    check_spec(changed)
    return changed
