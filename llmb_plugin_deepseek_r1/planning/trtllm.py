"""trtllm-bench command lines and extra-LLM-API-options YAML, by TensorRT-LLM version (pure functions).

The YAML keys moved between releases (see shared/reference/trtllm-bench.md):
``legacy`` (<= 0.20) nests settings under ``pytorch_backend_config``; ``flat`` (0.21 and 1.0.0rc*) puts them at
the top level; ``nested`` (1.0 GA on) groups them in ``cuda_graph_config``, ``kv_cache_config`` and
``moe_config``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from packaging.version import Version

from llmb_plugin_deepseek_r1.recipe import MODEL_NAME
from .versions import FIRST_REPORT_JSON, MTP_LAYERS, STREAM_INTERVAL, yaml_generation

if TYPE_CHECKING:
    from .spec import RunSpec


def cuda_graph_batch_sizes(max_batch_size: int) -> list[int]:
    """Powers of two up to max_batch_size, plus max_batch_size itself (more sizes cost memory)."""
    sizes = []
    size = 1
    while size <= max_batch_size:
        sizes.append(size)
        size *= 2
    if sizes[-1] != max_batch_size:
        sizes.append(max_batch_size)
    return sizes


def extra_llm_api_options(spec: RunSpec) -> dict[str, Any]:
    """The extra-options YAML content (as a mapping) for the spec's mode and TensorRT-LLM version."""
    generation = yaml_generation(spec.trtllm_version)
    if spec.mode == "min_latency":
        return _min_latency(spec, generation)
    return _max_throughput(spec, generation)


def _max_throughput(spec: RunSpec, generation: str) -> dict[str, Any]:
    sizes = cuda_graph_batch_sizes(spec.max_batch_size)
    options: dict[str, Any] = {"enable_attention_dp": spec.attention_dp}
    if generation == "nested":
        options["cuda_graph_config"] = {"enable_padding": True, "batch_sizes": sizes}
        options["kv_cache_config"] = {"dtype": "fp8", "free_gpu_memory_fraction": spec.kv_cache_fraction}
    elif generation == "flat":
        options.update(use_cuda_graph=True, cuda_graph_padding_enabled=True, cuda_graph_batch_sizes=sizes,
                       kv_cache_dtype="fp8")
    else:
        options["pytorch_backend_config"] = {
            "use_cuda_graph": True, "cuda_graph_padding_enabled": True, "cuda_graph_batch_sizes": sizes,
            "kv_cache_dtype": "fp8", "enable_overlap_scheduler": True,
        }
    options["print_iter_log"] = True
    options["stream_interval"] = STREAM_INTERVAL
    return options


def _min_latency(spec: RunSpec, generation: str) -> dict[str, Any]:
    options: dict[str, Any] = {"enable_attention_dp": False}
    if generation == "nested":
        options["cuda_graph_config"] = {"enable_padding": True,
                                        "batch_sizes": cuda_graph_batch_sizes(spec.max_batch_size)}
        options["kv_cache_config"] = {"free_gpu_memory_fraction": spec.kv_cache_fraction}
        options["moe_config"] = {"backend": "TRTLLM"}
    elif generation == "flat":
        options.update(use_cuda_graph=True, moe_backend="TRTLLM")
    else:
        options["pytorch_backend_config"] = {"enable_overlap_scheduler": True, "use_cuda_graph": True,
                                             "moe_backend": "TRTLLM"}
    options["speculative_config"] = {"decoding_type": "MTP", "num_nextn_predict_layers": MTP_LAYERS}
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
        "--extra_llm_api_options", str(spec.job_file(".config.yml", job_id)),
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
