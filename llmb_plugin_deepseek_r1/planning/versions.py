"""What each TensorRT-LLM version reads: version parsing, the image-name convention, the YAML generations, the
extra-options keys each version knows and the flag spellings it prefers.

The YAML keys moved between releases (see shared/reference/trtllm-bench.md and trtllm-current.md):
``legacy`` (<= 0.20) nests settings under ``pytorch_backend_config``; ``flat`` (0.21 and 1.0.0rc*) puts them at
the top level; ``nested`` (1.0 GA on) groups them in ``cuda_graph_config``, ``kv_cache_config`` and
``moe_config``. 1.1 adds ``attention_dp_config`` (assumed: the first release NVIDIA's configs use it with) and
prefers ``--config``; 1.2 spells the number of MTP layers ``speculative_config.max_draft_len``; 1.3 generates
the dense (step-64) CUDA-graph batch list itself from ``cuda_graph_config.max_batch_size``.
"""

from __future__ import annotations

import re

from packaging.version import InvalidVersion, Version

from llmb_plugin_deepseek_r1.host.errors import ValidationError

FIRST_FLAT = (0, 21)
FIRST_NESTED = Version("1.0.0")
FIRST_REPORT_JSON = (0, 20)
FIRST_CONFIG_FLAG = Version("1.1.0rc0")
FIRST_ATTENTION_DP_CONFIG = Version("1.1.0rc0")
FIRST_MAX_DRAFT_LEN = Version("1.2.0rc0")
FIRST_DENSE_CUDA_GRAPHS = Version("1.3.0rc0")
MTP_LAYERS = 3
STREAM_INTERVAL = 4

_SPECULATIVE = frozenset({"decoding_type", "num_nextn_predict_layers", "use_relaxed_acceptance_for_thinking",
                          "relaxed_topk", "relaxed_delta"})
_COMMON_TOP = {"enable_attention_dp": None, "print_iter_log": None, "stream_interval": None,
               "enable_chunked_prefill": None, "speculative_config": _SPECULATIVE,
               "kv_cache_config": frozenset({"free_gpu_memory_fraction", "enable_block_reuse"})}
_KEYS_BY_GENERATION: dict[str, dict[str, frozenset[str] | None]] = {
    "legacy": {**_COMMON_TOP, "pytorch_backend_config": frozenset({
        "use_cuda_graph", "cuda_graph_padding_enabled", "cuda_graph_batch_sizes", "kv_cache_dtype",
        "enable_overlap_scheduler", "moe_backend"})},
    "flat": {**_COMMON_TOP, "use_cuda_graph": None, "cuda_graph_padding_enabled": None,
             "cuda_graph_batch_sizes": None, "cuda_graph_max_batch_size": None, "kv_cache_dtype": None,
             "moe_backend": None},
    "nested": {**_COMMON_TOP,
               "kv_cache_config": frozenset({"dtype", "free_gpu_memory_fraction", "enable_block_reuse"}),
               "cuda_graph_config": frozenset({"enable_padding", "batch_sizes", "max_batch_size"}),
               "moe_config": frozenset({"backend"})},
}


def parse_trtllm_version(var: str, text: str) -> Version:
    try:
        return Version(text.strip())
    except InvalidVersion:
        raise ValidationError(f"{var}={text!r} is not valid: expected a TensorRT-LLM version such as 1.0.0rc1 "
                              f"or 1.1.0") from None


def trtllm_version_from_image(image: str) -> Version | None:
    """The version in an image name: `tensorrt-llm+release+1.0.0rc1.sqsh`, `...release:1.1.0rc5` -> Version."""
    base = image.rstrip("/").rsplit("/", 1)[-1]
    base = re.sub(r"\.(sqsh|squashfs)$", "", base)
    tag = re.split(r"[:+]", base)[-1]
    tag = re.sub(r"^(release-|v)", "", tag)
    try:
        return Version(tag)
    except InvalidVersion:
        return None


def yaml_generation(version: str | Version) -> str:
    """'legacy', 'flat' or 'nested': which YAML key layout this TensorRT-LLM version reads."""
    v = Version(str(version))
    if v >= FIRST_NESTED:
        return "nested"
    if v.release[:2] >= FIRST_FLAT:
        return "flat"
    return "legacy"




def known_keys(version: str | Version) -> dict[str, frozenset[str] | None]:
    """The extra-options keys this TensorRT-LLM version reads: top-level name -> its sub-keys (None: a value)."""
    v = Version(str(version))
    keys = dict(_KEYS_BY_GENERATION[yaml_generation(v)])
    if v >= FIRST_ATTENTION_DP_CONFIG:
        keys["attention_dp_config"] = frozenset({"enable_balance", "batching_wait_iters", "timeout_iters"})
    if v >= FIRST_MAX_DRAFT_LEN:
        keys["speculative_config"] = _SPECULATIVE | {"max_draft_len"}
    return keys


def unknown_keys(options: dict, version: str | Version) -> list[str]:
    """Dotted names of the keys in ``options`` that this version does not read (empty: all known)."""
    keys = known_keys(version)
    bad = []
    for name, value in options.items():
        if name not in keys:
            bad.append(name)
        elif keys[name] is not None and isinstance(value, dict):
            bad += [f"{name}.{sub}" for sub in value if sub not in keys[name]]  # type: ignore[operator]
    return bad


def config_flag(version: str | Version) -> str:
    """How this version's trtllm-bench is given the extra-options file: ``--config`` where it is the preferred
    spelling (1.1 on), else ``--extra_llm_api_options`` (the only one older versions know)."""
    return "--config" if Version(str(version)) >= FIRST_CONFIG_FLAG else "--extra_llm_api_options"


def mtp_layers_key(version: str | Version) -> str:
    return "max_draft_len" if Version(str(version)) >= FIRST_MAX_DRAFT_LEN else "num_nextn_predict_layers"


def generates_dense_cuda_graphs(version: str | Version) -> bool:
    return Version(str(version)) >= FIRST_DENSE_CUDA_GRAPHS
