"""trtllm-bench command lines and extra-LLM-API-options YAML, by TensorRT-LLM version (pure functions).

The options are built once in TensorRT-LLM 1.0 GA spelling (the profile's YAML for the mode plus the spec's
values), then written in the spelling of the image's version (see versions.py), the user's extra options
(EXTRA_LLM_API_OPTIONS) merged on top, and refused when the version does not know a key.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from packaging.version import Version

from llmb_plugin_deepseek_r1.host.errors import ValidationError
from llmb_plugin_deepseek_r1.recipe import MODEL_NAME
from .versions import (FIRST_REPORT_JSON, config_flag, generates_dense_cuda_graphs, known_keys, mtp_layers_key,
                       unknown_keys, yaml_generation)

if TYPE_CHECKING:
    from .spec import RunSpec

GRAPH_MEMORY_MIB = 10  # about 10 MB of GPU memory per captured CUDA graph (TensorRT-LLM's measurement)
DENSE_STEP = 64


def cuda_graph_batch_sizes(max_batch_size: int, scheme: str = "powers-of-two") -> list[int]:
    """NVIDIA's powers of two up to max_batch_size plus max_batch_size itself, or the denser `step-64` list
    (powers of two below 64, then every multiple of 64, then max_batch_size): less padding, more graphs."""
    sizes = []
    size = 1
    while size <= max_batch_size and (scheme == "powers-of-two" or size < DENSE_STEP):
        sizes.append(size)
        size *= 2
    if scheme == "step-64":
        sizes += list(range(DENSE_STEP, max_batch_size + 1, DENSE_STEP))
    if sizes[-1] != max_batch_size:
        sizes.append(max_batch_size)
    return sizes


def cuda_graph_plan(spec: RunSpec) -> dict[str, Any]:
    """What the dry run shows: the scheme, the list, how it is written and the GPU memory the graphs cost."""
    sizes = cuda_graph_batch_sizes(spec.max_batch_size, spec.cuda_graph_scheme)
    baseline = len(cuda_graph_batch_sizes(spec.max_batch_size))
    generated = _generated_by_trtllm(spec)
    return {
        "scheme": spec.cuda_graph_scheme, "batch_sizes": sizes, "graphs": len(sizes),
        "approx_memory_mib": len(sizes) * GRAPH_MEMORY_MIB,
        "extra_memory_vs_powers_of_two_mib": (len(sizes) - baseline) * GRAPH_MEMORY_MIB,
        "written_as": ("cuda_graph_config.max_batch_size (TensorRT-LLM generates this list)" if generated
                       else "explicit batch sizes"),
    }


def _generated_by_trtllm(spec: RunSpec) -> bool:
    return spec.cuda_graph_scheme == "step-64" and generates_dense_cuda_graphs(spec.trtllm_version)


def canonical_options(spec: RunSpec) -> dict[str, Any]:
    """The options in TensorRT-LLM 1.0 GA spelling: the spec's values, then the profile's YAML for the mode."""
    base = copy.deepcopy(dict(spec.yaml_base))
    graphs: dict[str, Any] = {"enable_padding": True}
    if _generated_by_trtllm(spec):
        graphs["max_batch_size"] = spec.max_batch_size
    else:
        graphs["batch_sizes"] = cuda_graph_batch_sizes(spec.max_batch_size, spec.cuda_graph_scheme)
    options: dict[str, Any] = {"enable_attention_dp": spec.attention_dp, "cuda_graph_config": graphs,
                               "kv_cache_config": {**(base.pop("kv_cache_config", None) or {}),
                                                   "free_gpu_memory_fraction": spec.kv_cache_fraction}}
    if spec.enable_chunked_prefill is not None:
        options["enable_chunked_prefill"] = spec.enable_chunked_prefill
    options.update(base)
    return options


def _flatten(options: dict[str, Any], generation: str) -> dict[str, Any]:
    """1.0 GA spelling -> the flat (0.21, 1.0.0rc*) or legacy (<= 0.20) spelling."""
    out: dict[str, Any] = {}
    backend: dict[str, Any] = {}
    for key, value in options.items():
        if key == "cuda_graph_config":
            backend.update(use_cuda_graph=True, cuda_graph_padding_enabled=value.get("enable_padding", False))
            if "batch_sizes" in value:
                backend["cuda_graph_batch_sizes"] = value["batch_sizes"]
            if "max_batch_size" in value:
                backend["cuda_graph_max_batch_size"] = value["max_batch_size"]
        elif key == "kv_cache_config":
            rest = {k: v for k, v in value.items() if k not in ("dtype", "free_gpu_memory_fraction")}
            if "dtype" in value:
                backend["kv_cache_dtype"] = value["dtype"]
            if rest:
                out["kv_cache_config"] = rest  # the fraction travels on the command line
        elif key == "moe_config":
            backend["moe_backend"] = value["backend"]
        else:
            out[key] = value
    if generation == "legacy":
        backend["enable_overlap_scheduler"] = True
        return {"enable_attention_dp": out.pop("enable_attention_dp"), "pytorch_backend_config": backend, **out}
    return {"enable_attention_dp": out.pop("enable_attention_dp"), **backend, **out}


def extra_llm_api_options(spec: RunSpec) -> dict[str, Any]:
    """The extra-options YAML content (as a mapping) for the spec's TensorRT-LLM version; a key that version
    does not know is refused (ValidationError naming it and the version), never passed silently."""
    options = canonical_options(spec)
    generation = yaml_generation(spec.trtllm_version)
    if generation != "nested":
        options = _flatten(options, generation)
    speculative = options.get("speculative_config")
    if isinstance(speculative, dict) and "num_nextn_predict_layers" in speculative:
        layers_key = mtp_layers_key(spec.trtllm_version)
        options["speculative_config"] = {(layers_key if k == "num_nextn_predict_layers" else k): v
                                         for k, v in speculative.items()}
    for key, value in (spec.extra_yaml or {}).items():
        if isinstance(value, dict) and isinstance(options.get(key), dict):
            options[key] = {**options[key], **value}
        else:
            options[key] = value
    bad = unknown_keys(options, spec.trtllm_version)
    if bad:
        where = " (from EXTRA_LLM_API_OPTIONS)" if any(b.split(".")[0] in (spec.extra_yaml or {}) for b in bad) else ""
        raise ValidationError(
            f"extra-options key {bad[0]!r}{where} is not known to TensorRT-LLM {spec.trtllm_version}: it would be "
            f"refused or ignored; keys that version reads: {', '.join(sorted(known_keys(spec.trtllm_version)))}")
    return options


def _number(value: float) -> str:
    return f"{value:g}"


def bench_argv(spec: RunSpec, job_id: str = "%j") -> list[str]:
    """The exact `trtllm-llmapi-launch trtllm-bench ...` argv of one use case (paths are host paths, mounted at
    the same place inside the container)."""
    argv = [
        "trtllm-llmapi-launch", "trtllm-bench",
        "-m", MODEL_NAME, "--model_path", str(spec.model_dir),
        "throughput",
        "--tp", str(spec.tp), "--ep", str(spec.ep), "--pp", str(spec.pp),
        "--warmup", "0",
        "--dataset", str(spec.dataset),
        "--backend", "pytorch",
        "--max_batch_size", str(spec.max_batch_size),
        "--max_num_tokens", str(spec.max_num_tokens),
        config_flag(spec.trtllm_version), str(spec.job_file(".config.yml", job_id)),
        "--num_requests", str(spec.num_requests),
        "--kv_cache_free_gpu_mem_fraction", _number(spec.kv_cache_fraction),
        "--concurrency", str(spec.concurrency),
    ]
    if spec.streaming:
        argv.append("--streaming")
    argv += ["--eos_id", "-1"]
    if Version(spec.trtllm_version).release[:2] >= FIRST_REPORT_JSON:
        argv += ["--report_json", str(spec.job_file(".report.json", job_id))]
    return argv
