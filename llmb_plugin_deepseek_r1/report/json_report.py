"""Read the `--report_json` file trtllm-bench 0.20+ writes, into the same ParsedReport as the printed report.

Key names follow `ReportUtility.get_statistics_dict` in TensorRT-LLM's tensorrt_llm/bench/dataclasses/reporting.py:
top-level `engine`, `machine` (1.2+), `world_info`, `request_info`, `performance`, `streaming_metrics` (only with
--streaming), `decoding_stats` (speculative decoding only) and `dataset`. Percentile dicts use the keys
p50/p90/p95/p99/minimum/maximum/average.
"""

from __future__ import annotations

import json
import math
from os import PathLike
from typing import Any

from .model import (
    REQUIRED_METRICS,
    REQUIRED_PERCENTILES,
    STREAMING_METRICS,
    ParsedReport,
)

_PERFORMANCE = {
    "request_throughput_req_s": "request_throughput_req_s",
    "system_output_throughput_tok_s": "total_output_throughput_tok_s",
    "system_total_throughput_tok_s": "total_token_throughput_tok_s",
    "total_latency_ms": "total_latency_ms",
    "avg_request_latency_ms": "avg_request_latency_ms",
    "output_throughput_per_user_tok_s": "per_user_output_throughput_tok_s_user",
    "output_throughput_per_gpu_tok_s": "per_gpu_output_throughput_tok_s_gpu",
}
_STREAMING = {
    "avg_ttft_ms": "avg_ttft_ms",
    "avg_tpot_ms": "avg_tpot_ms",
    "token_output_speed_tok_s": "per_user_output_speed_tok_s_user",
}
_PERCENTILE_BLOCKS = (
    ("performance", "request_latency_percentiles_ms", "latency_ms"),
    ("streaming_metrics", "tpot_percentiles", "tpot_ms"),
    ("streaming_metrics", "ttft_percentiles", "ttft_ms"),
    ("streaming_metrics", "gen_tps_percentiles", "gtps_tok_s_user"),
    ("decoding_stats", "num_draft_tokens_percentiles", "draft_tokens"),
    ("decoding_stats", "num_accepted_draft_tokens_percentiles", "accepted_draft_tokens"),
    ("decoding_stats", "draft_acceptance_rate_percentiles", "draft_acceptance_rate"),
    ("decoding_stats", "acceptance_length_percentiles", "acceptance_length"),
)
_PCT_KEYS = {"minimum": "min", "maximum": "max", "average": "avg"}
_REQUEST = {
    "num_requests": "num_requests",
    "avg_num_concurrent_requests": "num_concurrent_requests",
    "avg_input_length": "avg_input_len",
    "avg_output_length": "avg_output_len",
}
_WORLD = {
    "tp_size": "tp",
    "pp_size": "pp",
    "ep_size": "ep",
    "world_size": "world_size",
    "max_batch_size": "max_batch_size",
    "max_num_tokens": "max_num_tokens",
    "scheduling_policy": "scheduling_policy",
    "kv_cache_percentage": "kv_cache_fraction",  # a fraction (0.85) in the JSON, "85.00%" when printed
}
_ENGINE = {
    "model": "model",
    "model_path": "model_path",
    "engine_dir": "engine_dir",
    "version": "trtllm_version",
    "backend": "backend",
    "dtype": "dtype",
    "kv_cache_dtype": "kv_cache_dtype",
    "quantization": "quantization",
    "max_input_length": "max_input_len",
    "max_sequence_length": "max_seq_len",
}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _section(data: dict[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name)
    return value if isinstance(value, dict) else {}


def report_from_statistics(data: dict[str, Any]) -> ParsedReport:
    """Map a get_statistics_dict()-shaped mapping to a ParsedReport (pure; missing keys stay missing)."""
    # --report_json exists from 0.20 on; every version writes the same keys.
    rep = ParsedReport(source="report_json", generation="0.20+", subcommand="throughput or latency")
    for section, table in (("performance", _PERFORMANCE), ("streaming_metrics", _STREAMING)):
        values = _section(data, section)
        for src, dst in table.items():
            number = _number(values.get(src))
            if number is not None:
                rep.metrics[dst] = number
                rep.metric_labels[dst] = f"{section}.{src}"
    for section, key, block in _PERCENTILE_BLOCKS:
        values = _section(_section(data, section), key)
        row = {_PCT_KEYS.get(k, k): n for k, v in values.items() if (n := _number(v)) is not None}
        if row:
            rep.percentiles[block] = row
    for src, dst in _REQUEST.items():
        number = _number(_section(data, "request_info").get(src))
        if number is not None:
            rep.request_details[dst] = int(number) if dst == "num_requests" else number
    for src, dst in _WORLD.items():
        value = _section(data, "world_info").get(src)
        if dst in ("scheduling_policy",) and isinstance(value, str):
            rep.world[dst] = value
        elif (number := _number(value)) is not None:
            rep.world[dst] = number if dst == "kv_cache_fraction" else int(number)
    for src, dst in _ENGINE.items():
        value = _section(data, "engine").get(src)
        if value is not None and str(value) != "None":
            rep.engine[dst] = str(value)
    machine = _section(data, "machine")
    for src, dst in (("name", "name"), ("memory.total", "memory_gb"), ("clocks.mem", "mem_clock_ghz")):
        value = machine.get(src)
        if value is not None:
            rep.machine[dst] = value
    decoding = _section(data, "decoding_stats")
    if decoding.get("mode") is not None:
        rep.decoding_mode = str(decoding["mode"])
    dataset = _section(data, "dataset")
    if dataset:
        if dataset.get("dataset_path") is not None:
            rep.dataset["path"] = str(dataset["dataset_path"])
        if _number(dataset.get("num_requests")) is not None:
            rep.dataset["num_sequences"] = int(dataset["num_requests"])
        for src, dst in (("isl_stats", "isl"), ("osl_stats", "osl"), ("seq_len_stats", "seq_len")):
            row = {_PCT_KEYS.get(k, k): n for k, v in _section(dataset, src).items() if (n := _number(v)) is not None}
            if row:
                rep.dataset[dst] = row
    missing = [f"performance key for {key}" for key in REQUIRED_METRICS if key not in rep.metrics]
    if "streaming_metrics" in data:
        missing += [f"streaming_metrics key for {key}" for key in STREAMING_METRICS if key not in rep.metrics]
    for block, row in rep.percentiles.items():
        cut = [key for key in REQUIRED_PERCENTILES if key not in row]
        if cut and block in ("latency_ms", "tpot_ms", "ttft_ms"):
            missing.append(f"{block} percentile keys {', '.join(cut)}")
    rep.missing = missing
    rep.complete = not missing
    return rep


def parse_report_json(path: str | PathLike[str]) -> ParsedReport:
    """Read a --report_json file. Raises ValueError (naming the file) when it is not a JSON object."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc}); expected a trtllm-bench --report_json file") from exc
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise ValueError(f"{path}: expected a JSON object (a trtllm-bench --report_json file), got {kind}")
    return report_from_statistics(data)
