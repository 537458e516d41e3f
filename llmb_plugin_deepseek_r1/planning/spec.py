"""Environment knobs -> one validated, frozen RunSpec per use case (pure: no file system, no Slurm)."""

from __future__ import annotations

import re
from dataclasses import MISSING, dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, NamedTuple

from llmb_plugin_deepseek_r1 import paths
from llmb_plugin_deepseek_r1.recipe import MODEL_NAME
from llmb_plugin_deepseek_r1.host import safety
from llmb_plugin_deepseek_r1.planning import bounds, knobs
from llmb_plugin_deepseek_r1.host.contract import RunRequest, is_secret_name
from llmb_plugin_deepseek_r1.host.errors import ValidationError
from llmb_plugin_deepseek_r1.host.layout import node_layout
from . import profiles as prof
from .sweep import expand_sweep
from .versions import parse_trtllm_version, trtllm_version_from_image

DEFAULT_USE_CASE_ORDER = ("reasoning", "chat", "summarization", "generation")

_INT_KNOBS = {"MAX_NUM_TOKENS": "max_num_tokens", "MAX_BATCH_SIZE": "max_batch_size",
              "NUM_REQUESTS": "num_requests", "TP": "tp", "EP": "ep", "PP": "pp"}
# RunSpec field -> the name the dry-run document gives it (sources are keyed by the document's names).
_DOC_NAMES = {"kv_cache_fraction": "kv_cache_free_gpu_mem_fraction"}


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
    profile: str = "25.07"
    gpu_table: str = "gb200"
    enable_chunked_prefill: bool | None = None
    cuda_graph_scheme: str = "powers-of-two"
    yaml_base: Mapping[str, Any] = field(default_factory=dict, compare=False)
    extra_yaml: Mapping[str, Any] = field(default_factory=dict, compare=False)
    checkpoint_repo: str | None = None
    checkpoint_revision: str | None = None
    time_limit_basis: str = ""
    notes: tuple[str, ...] = ()
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)
    nsys_profile: bool = False      # ENABLE_PROFILE (llmb-run -p): the benchmark runs under `nsys profile`
    profile_start: int = 0          # PROFILE_START/PROFILE_END: the iteration window (TLLM_PROFILE_START_STOP)
    profile_end: int = 1
    gpu_metrics: bool = False       # ENABLE_GPU_METRICS: nsys --gpu-metrics-devices all

    def __getattr__(self, name: str) -> Any:
        """A job pickled before a field existed (queued across an upgrade) gets that field's default; its YAML
        base is its profile's YAML for its mode."""
        if name == "yaml_base":
            from llmb_plugin_deepseek_r1.recipe import load_metadata

            profile = (load_metadata().get("profiles") or {}).get(self.profile) or {}
            return dict(((profile.get("yaml") or {}).get(self.mode)) or {})
        known = type(self).__dataclass_fields__.get(name)
        if known is not None and known.default_factory is not MISSING:
            return known.default_factory()
        raise AttributeError(name)

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


class UseCaseRequest(NamedTuple):
    name: str
    isl: int
    osl: int


def requested_use_cases(env: Mapping[str, str]) -> str | None:
    """USE_CASES, or USE_CASE (the singular name 25.10+ users type: exactly one entry)."""
    single, plural = _set(env, "USE_CASE"), _set(env, "USE_CASES")
    if single is not None:
        if len(re.split(r"[\s,]+", single.strip())) != 1:
            raise ValidationError(f"USE_CASE={single!r} is not valid: expected one name:ISL/OSL entry "
                                  f"(USE_CASES takes several)")
        if plural is not None and plural.strip() != single.strip():
            raise ValidationError(f"USE_CASE={single!r} and USE_CASES={plural!r} disagree: set only one of them")
    return single if single is not None else plural


def parse_use_cases(value: str | None, known: Mapping[str, tuple[int, int]]) -> list[UseCaseRequest]:
    """USE_CASES: 'name:ISL/OSL' (or a known name alone) separated by spaces or commas; unset: every known one."""
    if value is None or not value.strip():
        order = [n for n in DEFAULT_USE_CASE_ORDER if n in known] + [n for n in known if n not in
                                                                      DEFAULT_USE_CASE_ORDER]
        return [UseCaseRequest(n, *known[n]) for n in order]
    result: list[UseCaseRequest] = []
    entries = re.split(r"[\s,]+", value.strip())
    if len(entries) > bounds.MAX_USE_CASES:
        raise ValidationError(f"USE_CASES names {len(entries)} use cases: at most {bounds.MAX_USE_CASES} per "
                              f"invocation")
    for entry in entries:
        match = re.fullmatch(r"([^:]+):([^/]+)/(.+)", entry)
        if match:
            name = knobs.name("USE_CASES", match[1])
            isl = bounds.at_most(f"USE_CASES ISL of {name}", knobs.positive_int(f"USE_CASES ISL of {name}",
                                                                                 match[2]), bounds.MAX_ISL)
            osl = bounds.at_most(f"USE_CASES OSL of {name}", knobs.positive_int(f"USE_CASES OSL of {name}",
                                                                                 match[3]), bounds.MAX_OSL)
        elif entry in known:
            name, (isl, osl) = entry, known[entry]
        else:
            raise ValidationError(f"USE_CASES entry {entry!r} is not valid: expected name:ISL/OSL, "
                                  f"e.g. reasoning:1000/1000, or one of {', '.join(known)}")
        if any(r.name == name for r in result):
            raise ValidationError(f"USE_CASES names {name!r} twice: each use case may appear once")
        result.append(UseCaseRequest(name, isl, osl))
    return result


def _images(metadata: Mapping[str, Any]) -> list[str]:
    return [str(i) for i in (metadata.get("container") or {}).get("images") or []]


def resolve_image(env: Mapping[str, str], install_dir: Path, metadata: Mapping[str, Any],
                  default_uri: str | None = None) -> tuple[str, str]:
    """(image to run, TensorRT-LLM version) from RUN_CONF_IMAGE / TRTLLM_VERSION / ``default_uri`` (the chosen
    profile's image) / the recipe's image."""
    default_uri = default_uri or _images(metadata)[0]
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


def resolve_run_specs(request: RunRequest, metadata: Mapping[str, Any]) -> list[RunSpec]:
    """One RunSpec per use case and sweep point, all validated before anything is submitted."""
    points = expand_sweep(request.env)
    requested = requested_use_cases(request.env)
    per_point = len(re.split(r"[\s,]+", requested.strip())) if requested else len(DEFAULT_USE_CASE_ORDER)
    if len(points) * per_point > bounds.MAX_RUNS:
        raise ValidationError(f"{len(points)} sweep points x {per_point} use cases = {len(points) * per_point} "
                              f"runs; at most {bounds.MAX_RUNS} per invocation: split the sweep")
    specs: list[RunSpec] = []
    for point in points:
        specs.extend(_resolve_point(request, metadata, point))
    return specs


def _resolve_point(request: RunRequest, metadata: Mapping[str, Any], env: Mapping[str, str]) -> list[RunSpec]:
    """One RunSpec per requested use case: the profile's row -> knobs set in the environment -> derived values."""
    mode = knobs.choice("MODE", env["MODE"], knobs.MODES) if _set(env, "MODE") else "max_throughput"
    requested = _set(env, "PROFILE")
    chosen = prof.choose_profile(metadata, "0", requested) if requested else None
    image, version = resolve_image(env, request.install_dir, metadata,
                                   prof.default_profile_image(chosen) if chosen else None)
    choice = chosen or prof.choose_profile(metadata, version, None)
    table = prof.choose_table(metadata, choice, request.gpu_type, mode)
    use_cases = parse_use_cases(requested_use_cases(env), prof.known_use_cases(table.table))
    knob_values: dict[str, Any] = {}
    for var, key in _INT_KNOBS.items():
        if _set(env, var):
            knob_values[var] = (key, bounds.bounded(var, knobs.positive_int(var, env[var])))
    if _set(env, "KV_CACHE_FRACTION"):
        knob_values["KV_CACHE_FRACTION"] = ("kv_cache_fraction",
                                            knobs.fraction("KV_CACHE_FRACTION", env["KV_CACHE_FRACTION"]))
    if _set(env, "CONCURRENCY"):
        knob_values["CONCURRENCY"] = ("concurrency", bounds.bounded("CONCURRENCY",
                                                                    knobs.concurrency("CONCURRENCY", env["CONCURRENCY"])))
    if _set(env, "ENABLE_CHUNKED_PREFILL"):
        knob_values["ENABLE_CHUNKED_PREFILL"] = ("enable_chunked_prefill",
                                                 knobs.boolean("ENABLE_CHUNKED_PREFILL", env["ENABLE_CHUNKED_PREFILL"]))
    multiplier = prof.Sourced(knobs.positive_int("CONCURRENCY_MULTIPLIER", env["CONCURRENCY_MULTIPLIER"]),
                              "knob CONCURRENCY_MULTIPLIER") if _set(env, "CONCURRENCY_MULTIPLIER") else \
        prof.Sourced(int(choice.data.get("concurrency_multiplier") or 10), f"profile {choice.name}")
    scheme = knobs.choice("CUDA_GRAPH_BATCH_SIZES", env["CUDA_GRAPH_BATCH_SIZES"], knobs.CUDA_GRAPH_SCHEMES) \
        if _set(env, "CUDA_GRAPH_BATCH_SIZES") else str(choice.data.get("cuda_graph_batch_sizes") or "powers-of-two")
    scheme_source = "knob CUDA_GRAPH_BATCH_SIZES" if _set(env, "CUDA_GRAPH_BATCH_SIZES") else f"profile {choice.name}"
    checkpoint = prof.checkpoint_for(metadata, choice, request.dtype, env)
    where = paths.workload_paths(request.install_dir, env, folder=checkpoint.folder)
    workload_dir, model_dir = where.workload_dir, where.model_dir
    settings = knobs.job_settings(env)
    gpus_override = bounds.bounded("SBATCH_GPUS_PER_NODE", knobs.positive_int("GPUS_PER_NODE", env["GPUS_PER_NODE"])) \
        if _set(env, "GPUS_PER_NODE") else None  # NVIDIA's override of the GPU type's count (llmb-run honours it too)
    layout = node_layout(metadata, request.gpu_type, request.scale, _set(env, "SBATCH_SEGMENT_SIZE"), gpus_override)
    parallel_defaults = ((metadata.get("run") or {}).get("parallelism") or {}).get(request.gpu_type) or {}
    nsys = _profiling(env)
    knobs_set = {k: env[k] for k in knobs.RUN_KNOBS if k in env and not is_secret_name(k)}
    version_source = "knob TRTLLM_VERSION" if _set(env, "TRTLLM_VERSION") else "the image name"
    common_sources = {
        "profile": choice.reason, "trtllm_version": version_source,
        "image": "knob RUN_CONF_IMAGE" if _set(env, "RUN_CONF_IMAGE") else (
            f"profile {choice.name}" if chosen and prof.default_profile_image(choice) else "recipe image"),
        "mode": "knob MODE" if _set(env, "MODE") else "default",
        "streaming": "knob STREAMING" if _set(env, "STREAMING") else "default",
        "cuda_graphs": scheme_source, "checkpoint": checkpoint.source,
        "enable_chunked_prefill": "not set: TensorRT-LLM's default",
        "stdout": "rule: <result_dir>/<name>_streaming-on|off_<job id>.out", "stderr": "rule: as stdout, .err",
        "world": f"rule: --scale {request.scale} / {layout.gpus_per_node} GPUs per {request.gpu_type} node "
                 f"(run.gpus_per_node), one rank per GPU",
        "command": f"built for TensorRT-LLM {version}", "launch_command": "runtime (CONTAINER_RUNTIME) around command",
        "extra_llm_api_options": f"profile {choice.name} {mode} YAML + values above, in TensorRT-LLM {version} spelling"
        + (" + knob EXTRA_LLM_API_OPTIONS" if _set(env, "EXTRA_LLM_API_OPTIONS") else ""),
        "model_dir": "knob MODEL_PATH" if _set(env, "MODEL_PATH") else f"checkpoint folder ({checkpoint.repo_id})",
        "dataset": "rule: $LLMB_WORKLOAD/dataset_<use case>_<ISL>_<OSL>.txt",
        "result_dir": "rule: $LLMB_WORKLOAD/experiments/<model>_TP_EP_PP_CON_<use case>",
    }
    notes = tuple(n for n in (table.note,) if n)
    yaml_base = dict((choice.data.get("yaml") or {}).get(mode) or {})
    specs = []
    for uc in use_cases:
        values = prof.row_values(choice, table, mode, uc.name, uc.isl)
        row_parallelism = {k: int(values[k].value) for k in ("tp", "pp", "ep")}
        for key, number in default_parallelism(row_parallelism, parallel_defaults, request.scale).items():
            values[key] = prof.Sourced(number, f"scale {request.scale}: TP = scale / PP, EP = TP")
        for var, (key, value) in knob_values.items():
            values[key] = prof.Sourced(value, f"knob {var}")
        prof.derive_load(choice, values, set(knob_values), multiplier)
        value = {k: s.value for k, s in values.items()}
        sources = {**common_sources, **{_DOC_NAMES.get(k, k): s.source for k, s in values.items()},
                   "name": "USE_CASE(S)" if requested_use_cases(env) else f"profile {choice.name} rows",
                   "isl": "USE_CASE(S)" if requested_use_cases(env) else f"profile {choice.name} rows",
                   "osl": "USE_CASE(S)" if requested_use_cases(env) else f"profile {choice.name} rows"}
        if settings["time_limit_min"]:
            minutes, basis = settings["time_limit_min"], "knob SBATCH_TIMELIMIT"
        else:
            minutes, basis = prof.time_limit(metadata, table.gpu_type, gpus=request.scale,
                                             num_requests=int(value["num_requests"]),
                                             concurrency=int(value["concurrency"]), isl=uc.isl, osl=uc.osl)
        sources["time_limit"] = basis
        spec = RunSpec(
            use_case=uc.name, isl=uc.isl, osl=uc.osl,
            max_batch_size=int(value["max_batch_size"]), max_num_tokens=int(value["max_num_tokens"]),
            kv_cache_fraction=float(value["kv_cache_fraction"]),
            concurrency=int(value["concurrency"]), num_requests=int(value["num_requests"]),
            tp=int(value["tp"]), ep=int(value["ep"]), pp=int(value["pp"]), streaming=settings["streaming"],
            mode=mode, attention_dp=bool(value.get("attention_dp", True)), time_limit_min=int(minutes),
            workload=request.workload, model_size=request.model_size, dtype=request.dtype, scale=request.scale,
            gpu_type=request.gpu_type, gpus_per_node_hw=layout.gpus_per_node, install_dir=request.install_dir,
            workload_dir=workload_dir, model_dir=model_dir, image=image, trtllm_version=version,
            runtime=settings["runtime"], mpi_type=settings["mpi_type"], weight_check=settings["weight_check"],
            oom_retries=settings["oom_retries"], account=settings["account"], partition=settings["partition"],
            gpus_per_node=settings["gpus_per_node"], container_env=_container_env(settings["container_env"], env),
            bench_timeout_s=settings["bench_timeout"], hang_grace_s=settings["hang_grace"], knobs=knobs_set,
            nodes=layout.nodes, tasks_per_node=layout.tasks_per_node, segment=layout.segment,
            profile=choice.name, gpu_table=table.gpu_type,
            enable_chunked_prefill=value.get("enable_chunked_prefill"), cuda_graph_scheme=scheme,
            yaml_base=yaml_base, extra_yaml=settings["extra_yaml"], checkpoint_repo=checkpoint.repo_id,
            checkpoint_revision=checkpoint.revision, time_limit_basis=basis, notes=notes, sources=sources,
            **nsys,
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


def _container_env(names: tuple[str, ...], env: Mapping[str, str]) -> tuple[str, ...]:
    """CONTAINER_ENV, plus LLMB_CONTAINER_ENV: the variables a launcher was given explicitly (llmb-run --env, a job
    file's env) reach the container too, as NVIDIA's launch scripts pass them."""
    extra = [knobs.env_name("LLMB_CONTAINER_ENV", n) for n in (env.get("LLMB_CONTAINER_ENV") or "").split(",") if n]
    return names + tuple(n for n in dict.fromkeys(extra) if n not in names)


def _profiling(env: Mapping[str, str]) -> dict[str, Any]:
    """ENABLE_PROFILE, PROFILE_START/PROFILE_END and ENABLE_GPU_METRICS (NVIDIA's 25.12+ recipe profiling)."""
    enabled = knobs.boolean("ENABLE_PROFILE", env["ENABLE_PROFILE"]) if _set(env, "ENABLE_PROFILE") else False
    metrics = knobs.boolean("ENABLE_GPU_METRICS", env["ENABLE_GPU_METRICS"]) \
        if _set(env, "ENABLE_GPU_METRICS") else False
    start, end = _iteration("PROFILE_START", env, 0), _iteration("PROFILE_END", env, 1)
    if enabled and end <= start:
        raise ValidationError(f"PROFILE_END={end} must be greater than PROFILE_START={start}: the profiled iteration "
                              f"window would be empty")
    return {"nsys_profile": enabled, "profile_start": start, "profile_end": end, "gpu_metrics": metrics}


def _iteration(var: str, env: Mapping[str, str], default: int) -> int:
    if not _set(env, var):
        return default
    return 0 if env[var].strip() == "0" else knobs.positive_int(var, env[var])



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
    if spec.max_num_tokens < spec.isl and not spec.enable_chunked_prefill:
        raise ValidationError(
            f"MAX_NUM_TOKENS={spec.max_num_tokens} is smaller than the ISL {spec.isl} of use case "
            f"{spec.use_case}: requests could never be scheduled; use at least {spec.isl} or ENABLE_CHUNKED_PREFILL=true")
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
